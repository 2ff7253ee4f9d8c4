/*  aigw_admin_db: a small pool of asynchronous PostgreSQL connections owned
    by one actor, driven from that actor's zmq_poll loop.

    Connections are opened with PQconnectStartParams / PQconnectPoll, set
    their statement_timeout, and run one statement at a time with
    PQsendQueryParams in non-blocking mode; their sockets sit in the actor's
    poll set. Statements wait in a bounded FIFO for a free connection. A
    broken connection is reopened with backoff (AIGW_ADMIN_DB_BACKOFF_*);
    while every connection is down, a new statement triggers one prompt
    attempt, and statements fail at once when it fails too. Every statement
    has a deadline: waiting past it fails it, and running past it drops the
    connection (libpq's own cancel would block). Nothing here ever blocks,
    except that libpq resolves host names synchronously in
    PQconnectStartParams (use an address or a local name).

    Usage, in the owning actor's loop:
        int n = aigw_admin_db_pollitems (db, items + fixed, max);
        zmq_poll (items, fixed + n, min (timeout, aigw_admin_db_timeout (db)));
        aigw_admin_db_process (db, items + fixed, n);
    Completion callbacks run inside _process (never inside _query) and may
    submit new statements. */
#ifndef AIGW_ADMIN_DB_H_INCLUDED
#define AIGW_ADMIN_DB_H_INCLUDED

#include <czmq.h>
#include <libpq-fe.h>

//  Reconnect backoff after a failed or broken connection: doubles from MIN
//  to MAX.
#define AIGW_ADMIN_DB_BACKOFF_MIN_MS 1000
#define AIGW_ADMIN_DB_BACKOFF_MAX_MS 32000
//  While every connection is down, a statement triggers a connection
//  attempt at most this often.
#define AIGW_ADMIN_DB_KICK_MS 250
//  How long past the server's statement_timeout we wait for an answer
//  before dropping the connection.
#define AIGW_ADMIN_DB_GRACE_MS 1000
//  Most parameters of one statement.
#define AIGW_ADMIN_DB_MAX_PARAMS 16

typedef struct _aigw_admin_db_t aigw_admin_db_t;

//  How a statement ended.
typedef enum {
    AIGW_ADMIN_DB_OK = 0,       //  the server answered (the result may be an error)
    AIGW_ADMIN_DB_UNAVAILABLE,  //  no connection could be had, or it broke
    AIGW_ADMIN_DB_TIMEOUT,      //  the deadline passed
    AIGW_ADMIN_DB_CANCELLED     //  the pool is being destroyed
} aigw_admin_db_status_t;

//  Completion callback. RESULT is the statement's last result with status
//  OK (check PQresultStatus: it may carry an SQL error and its SQLSTATE),
//  NULL otherwise; the pool clears it after the callback returns.
typedef void (aigw_admin_db_fn) (void *arg, PGresult *result, aigw_admin_db_status_t status);

//  Create a pool of POOL_SIZE connections to CONNINFO (a libpq connection
//  string or URI) and start connecting. CONNECT_TIMEOUT_MS bounds each
//  attempt, STATEMENT_TIMEOUT_MS is set as the server's statement_timeout;
//  at most QUEUE_MAX statements wait. Returns NULL on allocation failure.
aigw_admin_db_t *aigw_admin_db_new (const char *conninfo, int pool_size, int64_t connect_timeout_ms,
                                    int64_t statement_timeout_ms, int queue_max);

//  Destroy: every statement not yet answered gets its callback with
//  CANCELLED. Safe on NULL and twice.
void aigw_admin_db_destroy (aigw_admin_db_t **self_p);

//  Run SQL with NPARAMS text parameters (an entry may be NULL for SQL
//  NULL; the pool copies them, and wipes its copies when done) before DEADLINE_MS (Unix ms). FN (ARG) is
//  called exactly once, from a later _process or _destroy. Returns 0, or
//  -1 when the queue is full or the statement cannot be held (FN is then
//  never called).
int aigw_admin_db_query (aigw_admin_db_t *self, const char *sql, int nparams,
                         const char *const *params, int64_t deadline_ms, aigw_admin_db_fn *fn,
                         void *arg);

//  Fill up to MAX poll items with the sockets the pool waits on. Returns
//  how many it filled. Call before every zmq_poll.
int aigw_admin_db_pollitems (aigw_admin_db_t *self, zmq_pollitem_t *items, int max);

//  Milliseconds until the pool's next timer (0 = now, -1 = none).
int aigw_admin_db_timeout (aigw_admin_db_t *self);

//  After zmq_poll: act on the COUNT items _pollitems filled, fire due
//  timers, start waiting statements, call completion callbacks.
void aigw_admin_db_process (aigw_admin_db_t *self, zmq_pollitem_t *items, int count);

//  Connections now open and usable.
int aigw_admin_db_ready (aigw_admin_db_t *self);

void aigw_admin_db_test (bool verbose);

#endif
