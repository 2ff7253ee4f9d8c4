/*  aigw_pgconn: one asynchronous PostgreSQL connection, driven from its
    owner's poll loop. Auth's key lookups, the admin's pool and the
    watchers (aigw_dbwatch) each build on it.

    The connection opens with PQconnectStartParams / PQconnectPoll within a
    connect deadline, optionally LISTENs on one channel, then runs one
    parameterized statement at a time (PQsendQueryParams, non-blocking),
    each with a deadline, or a COPY ... FROM STDIN fed from a buffer
    (PQputCopyData, PQputCopyEnd, non-blocking). When an attempt fails, the connection breaks, or
    a deadline passes, it is closed and reopened after a backoff that
    doubles from BACKOFF_MIN_MS to BACKOFF_MAX_MS; the backoff starts over
    once a connection is up (LISTEN done). Nothing here blocks, except that
    libpq resolves host names synchronously in PQconnectStartParams (give
    an address or a Unix socket folder where that matters).

    Usage, in the owner's loop (NOW: the owner's clock in ms, the same one
    in every call and in every deadline):
        item = {NULL, aigw_pgconn_fd (c), aigw_pgconn_events (c), 0};
        zmq_poll (&item, fd >= 0, min (timeout, aigw_pgconn_timeout (c, now)));
        aigw_pgconn_process (c, item.revents, now);
    Ask for fd and events before every poll: both change with the state.
    Callbacks run inside _process, _connect, _drop and _destroy (and DOWN
    inside _send when the connection breaks there); they may send the next
    statement or drop the connection, but never destroy it.

    Log lines name the database by host, port and name only; a libpq
    message that quotes the password is withheld. Single-threaded: the
    connection belongs to one actor. */
#ifndef AIGW_PGCONN_H_INCLUDED
#define AIGW_PGCONN_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

//  Longest channel name: PostgreSQL's identifier limit (NAMEDATALEN - 1).
#define AIGW_PGCONN_CHANNEL_MAX 63
//  TCP keepalives, so a dead peer is noticed while the connection only
//  waits: first probe after IDLE_S, then every INTERVAL_S, dead after
//  COUNT unanswered probes.
#define AIGW_PGCONN_KEEPALIVE_IDLE_S     "30"
#define AIGW_PGCONN_KEEPALIVE_INTERVAL_S "10"
#define AIGW_PGCONN_KEEPALIVE_COUNT      "3"
//  Longest "name host:port/db" label in log lines, NUL included.
#define AIGW_PGCONN_LABEL_MAX 160
//  _process: a ready socket that says "maybe both" when the caller does
//  not know (reading when nothing came is harmless).
#define AIGW_PGCONN_ANY (ZMQ_POLLIN | ZMQ_POLLOUT)

typedef struct _aigw_pgconn_t aigw_pgconn_t;

//  What the connection is doing.
typedef enum {
    AIGW_PGCONN_DOWN,        //  closed; reopens at the retry time
    AIGW_PGCONN_CONNECTING,  //  PQconnectPoll in progress
    AIGW_PGCONN_LISTENING,   //  LISTEN sent, its answer awaited
    AIGW_PGCONN_IDLE,        //  up, no statement running
    AIGW_PGCONN_BUSY         //  a statement running
} aigw_pgconn_state_t;

//  How a statement ended.
typedef enum {
    AIGW_PGCONN_OK = 0,       //  the server answered (the result may be an SQL error)
    AIGW_PGCONN_UNAVAILABLE,  //  the connection broke
    AIGW_PGCONN_TIMEOUT,      //  the deadline passed (the connection was dropped)
    AIGW_PGCONN_CANCELLED     //  the connection is being destroyed
} aigw_pgconn_status_t;

//  Statement callback. RESULT is the statement's last result with status
//  OK (check PQresultStatus: it may carry an SQL error), NULL otherwise;
//  the callback owns it (PQclear).
typedef void (aigw_pgconn_done_fn) (void *arg, PGresult *result, aigw_pgconn_status_t status);

//  Owner callbacks; any may be NULL. UP: the connection is up (and
//  LISTENing). DOWN: an attempt failed or the connection broke (after the
//  statement's own callback). NOTIFY: a notification on the channel, with
//  its payload.
typedef struct {
    void (*up) (void *arg);
    void (*down) (void *arg, const char *why);
    void (*notify) (void *arg, const char *payload);
    void *arg;  //  passed to each
} aigw_pgconn_events_t;

//  How to connect.
typedef struct {
    const char *name;              //  who, for log lines ("auth", "admin 0")
    const char *application_name;  //  pg_stat_activity's
    const char *listen;            //  channel to LISTEN on, or NULL
    int64_t connect_timeout_ms;    //  bound on connecting (and the LISTEN)
    int64_t statement_timeout_ms;  //  the server's statement_timeout, 0 = its default
    int64_t backoff_min_ms;        //  first reconnect wait
    int64_t backoff_max_ms;        //  the cap it doubles up to
} aigw_pgconn_settings_t;

//  Create a connection to CONNINFO (libpq URI or key=value string). Does
//  not connect yet: the first _process does (or _connect). Returns NULL
//  when libpq cannot parse CONNINFO, the channel is not a lower-case
//  identifier of at most AIGW_PGCONN_CHANNEL_MAX bytes, a timeout is not
//  positive, or out of memory. Caller owns the result.
aigw_pgconn_t *aigw_pgconn_new (const char *conninfo, const aigw_pgconn_settings_t *settings,
                                const aigw_pgconn_events_t *events);

//  Close and destroy; a running statement's callback gets CANCELLED. Wipes
//  the conninfo. Safe on NULL and twice; nulls the caller's pointer.
void aigw_pgconn_destroy (aigw_pgconn_t **self_p);

//  Start an attempt now if DOWN (whatever the backoff); _process carries
//  it on. Returns 0 when connecting or up, -1 when the attempt failed at
//  once (libpq refused the conninfo or ran out of memory).
int aigw_pgconn_connect (aigw_pgconn_t *self, int64_t now);

//  Close the connection after WHY (for the log) and reconnect after the
//  backoff, as if it had broken.
void aigw_pgconn_drop (aigw_pgconn_t *self, const char *why, int64_t now);

//  Run SQL with NPARAMS text parameters (a NULL entry is SQL NULL; libpq
//  copies them) before DEADLINE (the owner's clock). Only when IDLE.
//  DONE (ARG) is called exactly once, later. Returns 0, or -1 when not
//  idle or the connection broke (DONE is then never called; a broken
//  connection is dropped).
int aigw_pgconn_send (aigw_pgconn_t *self, const char *sql, int nparams, const char *const *params,
                      int64_t deadline, aigw_pgconn_done_fn *done, void *arg, int64_t now);

//  Run SQL with the simple protocol (several statements allowed; without
//  BEGIN/COMMIT of their own they run as one transaction), whose COPY ...
//  FROM STDIN takes the SIZE bytes at DATA (COPY's text or csv rows; not
//  copied: keep them until DONE). The rows are pushed as the socket takes
//  them, never blocking; DEADLINE bounds the whole. DONE gets the last
//  statement's result (an SQL error anywhere ends the string with it).
//  Only when IDLE; returns as _send does.
int aigw_pgconn_copy (aigw_pgconn_t *self, const char *sql, const char *data, size_t size,
                      int64_t deadline, aigw_pgconn_done_fn *done, void *arg, int64_t now);

//  The socket to poll, or -1 while there is none.
int aigw_pgconn_fd (aigw_pgconn_t *self);

//  What to poll it for: ZMQ_POLLIN and/or ZMQ_POLLOUT; 0 without a socket.
short aigw_pgconn_events (aigw_pgconn_t *self);

//  Fill ITEM with the socket and what to poll it for; false (ITEM left
//  alone) while there is no socket. SELF may be NULL (no database).
bool aigw_pgconn_pollitem (aigw_pgconn_t *self, zmq_pollitem_t *item);

//  Ms from NOW until _process is due whatever the socket does (a deadline,
//  a reconnect); -1 = none.
int aigw_pgconn_timeout (aigw_pgconn_t *self, int64_t now);

//  Make progress: REVENTS from the poll (0 when only the timeout passed,
//  AIGW_PGCONN_ANY when unknown). Extra calls are harmless.
void aigw_pgconn_process (aigw_pgconn_t *self, short revents, int64_t now);

//  Where the connection is.
aigw_pgconn_state_t aigw_pgconn_state (aigw_pgconn_t *self);

//  The "host:port/db" label, for the owner's log lines.
const char *aigw_pgconn_label (aigw_pgconn_t *self);

//  Selftest. The pure parts (arguments, backoff on a refused connection)
//  run anywhere; with a database in AIGW_TEST_DATABASE_URL or DATABASE_URL
//  (tests/run.sh exports it) it also runs statements, LISTEN/NOTIFY, a
//  deadline and a killed backend.
void aigw_pgconn_test (bool verbose);

#endif
