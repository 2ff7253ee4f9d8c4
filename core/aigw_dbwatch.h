/*  aigw_dbwatch: keeps one snapshot query fresh over a non-blocking libpq
    connection, inside an actor's poll loop.

    The watcher connects asynchronously (PQconnectStartParams and
    PQconnectPoll, with a connect deadline), LISTENs on a channel, and runs
    the snapshot query on every (re)connect and after each NOTIFY on the
    channel. Notifications that arrive while the query runs cause exactly
    one more run after it, however many there were. When the connection
    fails, or the LISTEN or a query passes its deadline, the watcher drops
    the connection and reconnects after a backoff that starts at
    AIGW_DBWATCH_BACKOFF_MIN_MS and doubles up to AIGW_DBWATCH_BACKOFF_MAX_MS
    (reset by each delivered snapshot). A query that fails on the server
    (an SQL error) keeps the connection and is run again after the same
    backoff, or at the next NOTIFY.

    Nothing here blocks: the caller polls aigw_dbwatch_fd for
    aigw_dbwatch_events with at most aigw_dbwatch_timeout ms, then calls
    aigw_dbwatch_process. Ask for the fd and events again before every
    poll: both change with the connection's state. NOW is the caller's
    monotonic clock in ms (zclock_mono), the same clock in every call.
    (libpq resolves a host name synchronously while connecting: give an IP
    address or a Unix socket folder where that matters.)

    Single-threaded: the watcher and its connection belong to one actor.
    The conninfo may hold a password: it is never logged, only host, port
    and database are. */
#ifndef AIGW_DBWATCH_H_INCLUDED
#define AIGW_DBWATCH_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

//  Reconnect backoff: first wait, and the cap it doubles up to.
#define AIGW_DBWATCH_BACKOFF_MIN_MS 1000
#define AIGW_DBWATCH_BACKOFF_MAX_MS 32000
//  Longest channel name: PostgreSQL's identifier limit (NAMEDATALEN - 1).
#define AIGW_DBWATCH_CHANNEL_MAX 63
//  Largest connect and query deadline a watcher accepts.
#define AIGW_DBWATCH_TIMEOUT_MAX_MS 3600000
//  TCP keepalives, so a dead peer is noticed while the watcher only waits
//  for notifications: first probe after IDLE_S, then every INTERVAL_S,
//  dead after COUNT unanswered probes.
#define AIGW_DBWATCH_KEEPALIVE_IDLE_S     "30"
#define AIGW_DBWATCH_KEEPALIVE_INTERVAL_S "10"
#define AIGW_DBWATCH_KEEPALIVE_COUNT      "3"
//  application_name the watcher's sessions carry (pg_stat_activity).
#define AIGW_DBWATCH_APPLICATION_NAME "aigw-dbwatch"

typedef struct _aigw_dbwatch_t aigw_dbwatch_t;

//  Create a watcher of SQL (one statement, no parameters) on the database
//  CONNINFO (libpq URI or key=value string), refreshed by NOTIFY on CHANNEL
//  (lower-case letters, digits and _, not a digit first, at most
//  AIGW_DBWATCH_CHANNEL_MAX bytes). TIMEOUT_MS bounds the connect and each
//  query. Does not connect yet: the first aigw_dbwatch_process does (the
//  timeout is 0 until then). Returns NULL on bad arguments (conninfo libpq
//  cannot parse, invalid channel, empty sql, timeout out of
//  1..AIGW_DBWATCH_TIMEOUT_MAX_MS) or out of memory. Caller owns the result.
aigw_dbwatch_t *aigw_dbwatch_new (const char *conninfo, const char *channel, const char *sql,
                                  int64_t timeout_ms);

//  Close the connection and destroy the watcher; wipes the conninfo. Safe
//  on NULL and twice; nulls the caller's pointer.
void aigw_dbwatch_destroy (aigw_dbwatch_t **self_p);

//  The socket to poll now, or -1 while waiting to (re)connect.
int aigw_dbwatch_fd (aigw_dbwatch_t *self);

//  What to poll the socket for now: ZMQ_POLLIN and/or ZMQ_POLLOUT (0 while
//  there is no socket).
short aigw_dbwatch_events (aigw_dbwatch_t *self);

//  Milliseconds from NOW until aigw_dbwatch_process must be called even if
//  the socket stays quiet (a deadline, a reconnect, a rerun); -1 = none.
int aigw_dbwatch_timeout (aigw_dbwatch_t *self, int64_t now);

//  Make progress: call when the socket is ready or the timeout has passed
//  (extra calls are harmless). Returns a new snapshot when a query completed
//  with PGRES_TUPLES_OK (the caller owns it: PQclear), else NULL.
PGresult *aigw_dbwatch_process (aigw_dbwatch_t *self, int64_t now);

//  True while the connection is up and LISTENing (or about to).
bool aigw_dbwatch_connected (aigw_dbwatch_t *self);

//  How many snapshots aigw_dbwatch_process has returned so far.
uint64_t aigw_dbwatch_snapshots (aigw_dbwatch_t *self);

void aigw_dbwatch_test (bool verbose);

#endif
