/*  aigw_usage: the usage actor (service "usage"). It keeps one record per
    answered data-plane request in PostgreSQL (schemas/sql/003_usage.sql).

    The edge sends each record when the answer is finished, as a request
    of its own (schemas/envelope.md section 2a); the actor holds it in the
    batch being filled and acknowledges it (status 204) only once it is
    durable: committed in the database, or fdatasync'ed to the spool
    (aigw_spool). An edge whose record was not acknowledged (the actor
    died, none is live) sends it again; the record id makes the repeat
    harmless. So a record is either still at the edge, in the spool, or in
    the database.

    A batch is written at usage.batch_records records or when its oldest
    is usage.batch_ms old: COPY into a temporary staging table, then INSERT
    ... SELECT ... ON CONFLICT (record_id, ts) DO NOTHING, one transaction,
    through one asynchronous connection (aigw_pgconn) driven from the
    host's loop. While the database is away or slow (a batch past
    usage.copy_timeout_ms), batches go to the spool, and the spool is
    replayed in order, several batches per COPY, once it answers again;
    while the spool holds anything new batches go behind it. A full spool
    refuses new batches: they are dropped, counted and logged. */
#ifndef AIGW_USAGE_H_INCLUDED
#define AIGW_USAGE_H_INCLUDED

#include "aigw_stage.h"

//  Settings' defaults (deploy/aigw.example.yaml).
#define AIGW_USAGE_DEFAULT_BATCH_RECORDS   1000
#define AIGW_USAGE_DEFAULT_BATCH_MS        200
#define AIGW_USAGE_DEFAULT_SPOOL_PATH      "aigw-usage.spool"
#define AIGW_USAGE_DEFAULT_SPOOL_MAX_BYTES ((size_t) 1 << 30)
#define AIGW_USAGE_DEFAULT_AHEAD_DAYS      3
#define AIGW_USAGE_DEFAULT_RETENTION_DAYS  90
#define AIGW_USAGE_DEFAULT_COPY_TIMEOUT_MS 10000

//  The stage, for the host (aigw_stage.h).
extern const aigw_stage_def_t aigw_usage_stage;

//  One record as a row of COPY's text format (the columns of
//  AIGW_USAGE_COLUMNS), appended to *BUF (*LEN used, *CAP allocated).
//  -1 when RECORD cannot be a row (no valid record id).
int aigw_usage_row (const aigw_envelope_t *record, char **buf, size_t *len, size_t *cap);

void aigw_usage_test (bool verbose);

#endif
