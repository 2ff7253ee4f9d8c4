/*  aigw_admin: the admin API actor (service "admin"), the last stage of
    every /api/v1/admin/ request after auth has named the principal.

    It answers auth/me from the envelope alone, router/health from the
    broker (aigw_health), and tenants, keys, roles and models (the config
    file's, read-only, beside the database's: aigw_models) from PostgreSQL
    through its own pool of asynchronous libpq connections
    (aigw_admin_db), whose sockets sit in this actor's zmq_poll set beside
    the broker socket, so a slow database never blocks the loop. Input is
    checked by aigw_admin_input before any statement runs; every statement
    is parameterized; every change writes its audit_log row in the same
    statement. The paths, bodies and answers are in schemas/openapi.yaml.

    Not replay-safe: its requests write. */
#ifndef AIGW_ADMIN_H_INCLUDED
#define AIGW_ADMIN_H_INCLUDED

#include "aigw_stage.h"

//  Requests waiting for a database connection; 503 past it.
#define AIGW_ADMIN_QUEUE_MAX 1024
//  Most pool connections, whatever the config asks.
#define AIGW_ADMIN_POOL_MAX 64
//  Used when the config leaves database.pool_size, connect_timeout_ms or
//  statement_timeout_ms at 0.
#define AIGW_ADMIN_DEFAULT_POOL_SIZE            4
#define AIGW_ADMIN_DEFAULT_CONNECT_TIMEOUT_MS   3000
#define AIGW_ADMIN_DEFAULT_STATEMENT_TIMEOUT_MS 5000
//  We answer this long before the request's own deadline, so our 503
//  reaches the client before the edge gives up with 504.
#define AIGW_ADMIN_DEADLINE_MARGIN_MS 100

//  The stage, for the host (aigw_stage.h).
extern const aigw_stage_def_t aigw_admin_stage;

void aigw_admin_test (bool verbose);

#endif
