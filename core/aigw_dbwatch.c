/*  aigw_dbwatch: one non-blocking libpq connection that keeps a snapshot
    query fresh (see aigw_dbwatch.h).

    States: WAITING (no connection; reconnect at retry_at) -> CONNECTING
    (PQconnectPoll until OK, within the deadline) -> LISTENING (LISTEN sent)
    -> QUERYING (snapshot query sent) -> IDLE (waiting for NOTIFY, or for a
    rerun after a failed query) -> QUERYING ... Any connection error, and
    any deadline passed while connecting, listening or querying, goes back
    to WAITING with the backoff.

    LISTEN goes first, so no change between the snapshot and the LISTEN can
    be missed. The snapshot runs with the extended protocol
    (PQsendQueryParams), which refuses a second statement. Log lines name
    the database by host, port and name only; a libpq message that happens
    to quote the password is withheld. */
#include "aigw_dbwatch.h"
#include "aigw_log.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>
#include <openssl/crypto.h>

//  Longest "host:port/db" label in log lines, NUL included.
#define S_LABEL_MAX 128
//  Longest log message taken from libpq or the server, NUL included.
#define S_MESSAGE_MAX 256
//  PQconnectPoll steps per aigw_dbwatch_process call: each step is taken
//  only when the socket is ready, so this only bounds a pathological loop.
#define S_CONNECT_STEPS_MAX 32
//  "LISTEN \"CHANNEL\"" with its NUL.
#define S_LISTEN_MAX (AIGW_DBWATCH_CHANNEL_MAX + 16)

typedef enum {
    S_WAITING,                  //  no connection; connect at retry_at
    S_CONNECTING,               //  PQconnectPoll in progress
    S_LISTENING,                //  LISTEN sent, its answer awaited
    S_QUERYING,                 //  snapshot query sent, its answer awaited
    S_IDLE                      //  connected, waiting for a NOTIFY or rerun_at
} s_state_t;

struct _aigw_dbwatch_t {
    char *conninfo;             //  libpq conninfo; may hold a password, wiped on destroy
    char *password;             //  the conninfo's password, or NULL; wiped on destroy
    char label[S_LABEL_MAX];    //  "host:port/db" for log lines
    char listen[S_LISTEN_MAX];  //  the LISTEN statement
    char *sql;                  //  the snapshot query
    int64_t timeout_ms;         //  connect and query deadline
    PGconn *conn;               //  the connection, NULL while WAITING
    s_state_t state;            //  where the watcher is
    PostgresPollingStatusType polling; //  last PQconnectPoll answer, while CONNECTING
    bool flushing;              //  libpq holds unsent output: poll for writing
    bool dirty;                 //  a NOTIFY came while querying: run once more
    bool failed;                //  the current statement returned an error
    PGresult *result;           //  the snapshot being received, until the query ends
    int64_t deadline;           //  connect or statement deadline
    int64_t retry_at;           //  WAITING: when to connect again
    int64_t rerun_at;           //  IDLE: when to rerun a failed query, 0 = not due
    int64_t backoff_ms;         //  next reconnect wait
    int64_t rerun_backoff_ms;   //  next wait before a failed query runs again
    uint64_t snapshots;         //  snapshots returned so far
};


//  --------------------------------------------------------------------------
//  Helpers

//  True if CHANNEL is a plain lower-case SQL identifier PostgreSQL keeps
//  as is.
static bool
s_channel_valid (const char *channel)
{
    size_t len = channel ? strlen (channel) : 0;
    if (len == 0 || len > AIGW_DBWATCH_CHANNEL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = channel[i];
        bool letter = (c >= 'a' && c <= 'z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!letter && !(digit && i > 0))
            return false;
    }
    return true;
}

//  Wipes and frees the string at *P; nulls *P.
static void
s_strfree (char **p)
{
    if (*p) {
        OPENSSL_cleanse (*p, strlen (*p));
        free (*p);
        *p = NULL;
    }
}

//  Parses CONNINFO: fills SELF's label and password. Returns 0, or -1 if
//  libpq cannot parse it (its message is not kept: it may quote the
//  password) or out of memory.
static int
s_parse_conninfo (aigw_dbwatch_t *self, const char *conninfo)
{
    char *message = NULL;
    PQconninfoOption *options = PQconninfoParse (conninfo, &message);
    if (message) {
        OPENSSL_cleanse (message, strlen (message));
        PQfreemem (message);
    }
    if (!options)
        return -1;
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *dbname = NULL;
    int rc = 0;
    for (PQconninfoOption *option = options; option->keyword; option++) {
        if (!option->val)
            continue;
        if (strcmp (option->keyword, "host") == 0)
            host = option->val;
        else if (strcmp (option->keyword, "hostaddr") == 0)
            hostaddr = option->val;
        else if (strcmp (option->keyword, "port") == 0)
            port = option->val;
        else if (strcmp (option->keyword, "dbname") == 0)
            dbname = option->val;
        else if (strcmp (option->keyword, "password") == 0 && *option->val
                 && !(self->password = strdup (option->val)))
            rc = -1;
    }
    snprintf (self->label, sizeof self->label, "%s%s%s/%s",
              host ? host : hostaddr ? hostaddr : "(default host)", port ? ":" : "",
              port ? port : "", dbname ? dbname : "(default database)");
    for (PQconninfoOption *option = options; option->keyword; option++)
        if (option->val)
            OPENSSL_cleanse (option->val, strlen (option->val));
    PQconninfoFree (options);
    return rc;
}

//  Copies TEXT (a libpq or server message) into OUT for a log line: one
//  line, and withheld if it quotes the password.
static void
s_message (const aigw_dbwatch_t *self, const char *text, char *out, size_t size)
{
    if (!text || !*text)
        text = "unknown error";
    if (self->password && strstr (text, self->password))
        text = "(libpq message withheld: it quotes the password)";
    snprintf (out, size, "%s", text);
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    size_t len = strlen (out);
    while (len && out[len - 1] == ' ')
        out[--len] = 0;
}

//  PQnoticeProcessor: server notices (and the FATAL a dying session sends)
//  go to the debug log, one line, instead of libpq's own stderr printer.
static void
s_notice (void *arg, const char *text)
{
    aigw_dbwatch_t *self = arg;
    char message[S_MESSAGE_MAX];
    s_message (self, text, message, sizeof message);
    aigw_debug ("dbwatch %s: server says: %s", self->label, message);
}

//  True if FD is ready now for EVENTS (POLLIN, POLLOUT); never waits.
static bool
s_ready (int fd, short events)
{
    if (fd < 0)
        return false;
    struct pollfd item = {.fd = fd, .events = events};
    return poll (&item, 1, 0) > 0 && item.revents != 0;
}

//  Drops the connection after WHY (a libpq message, or NULL for libpq's
//  own) and waits for the backoff before reconnecting.
static void
s_fail (aigw_dbwatch_t *self, int64_t now, const char *why)
{
    char message[S_MESSAGE_MAX];
    s_message (self, why ? why : self->conn ? PQerrorMessage (self->conn) : NULL, message,
               sizeof message);
    aigw_warn ("dbwatch %s: %s; reconnecting in %" PRId64 " ms", self->label, message,
               self->backoff_ms);
    PQclear (self->result);
    self->result = NULL;
    PQfinish (self->conn);
    self->conn = NULL;
    self->state = S_WAITING;
    self->flushing = self->dirty = self->failed = false;
    self->rerun_at = 0;
    self->retry_at = now + self->backoff_ms;
    self->backoff_ms *= 2;
    if (self->backoff_ms > AIGW_DBWATCH_BACKOFF_MAX_MS)
        self->backoff_ms = AIGW_DBWATCH_BACKOFF_MAX_MS;
}

//  Flushes what libpq holds. Returns 0, or -1 after s_fail.
static int
s_flush (aigw_dbwatch_t *self, int64_t now)
{
    int rc = PQflush (self->conn);
    if (rc < 0) {
        s_fail (self, now, NULL);
        return -1;
    }
    self->flushing = rc == 1;
    return 0;
}

//  Sends the LISTEN (STATE S_LISTENING) or the snapshot query (S_QUERYING)
//  with a fresh deadline. Returns 0, or -1 after s_fail.
static int
s_send (aigw_dbwatch_t *self, int64_t now, s_state_t state)
{
    int sent = state == S_LISTENING
                   ? PQsendQuery (self->conn, self->listen)
                   : PQsendQueryParams (self->conn, self->sql, 0, NULL, NULL, NULL, NULL, 0);
    if (!sent) {
        s_fail (self, now, NULL);
        return -1;
    }
    self->state = state;
    self->failed = false;
    self->deadline = now + self->timeout_ms;
    if (state == S_QUERYING)
        self->dirty = false;
    return s_flush (self, now);
}

//  Starts a connection. Leaves SELF CONNECTING, or WAITING after s_fail.
static void
s_connect_start (aigw_dbwatch_t *self, int64_t now)
{
    const char *keys[] = {"dbname", "application_name", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", NULL};
    const char *values[] = {self->conninfo,
                            AIGW_DBWATCH_APPLICATION_NAME,
                            "1",
                            AIGW_DBWATCH_KEEPALIVE_IDLE_S,
                            AIGW_DBWATCH_KEEPALIVE_INTERVAL_S,
                            AIGW_DBWATCH_KEEPALIVE_COUNT,
                            NULL};
    //  expand_dbname: the conninfo's own settings win over none of these
    //  but application_name and keepalives, which it may override.
    self->conn = PQconnectStartParams (keys, values, 1);
    if (!self->conn) {
        s_fail (self, now, "out of memory");
        return;
    }
    if (PQstatus (self->conn) == CONNECTION_BAD) {
        s_fail (self, now, NULL);
        return;
    }
    PQsetNoticeProcessor (self->conn, s_notice, self);
    self->state = S_CONNECTING;
    self->polling = PGRES_POLLING_WRITING;  //  libpq's documented first step
    self->deadline = now + self->timeout_ms;
}

//  Advances the connection while its socket is ready; on success sends
//  the LISTEN. Leaves SELF CONNECTING, LISTENING, or WAITING after s_fail.
static void
s_connect_step (aigw_dbwatch_t *self, int64_t now)
{
    for (int step = 0; step < S_CONNECT_STEPS_MAX; step++) {
        short want = self->polling == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        //  PQconnectPoll must only run when the socket is ready: before the
        //  TCP connect completes, it would take the socket as connected.
        if (!s_ready (PQsocket (self->conn), want))
            break;
        self->polling = PQconnectPoll (self->conn);
        if (self->polling == PGRES_POLLING_FAILED) {
            s_fail (self, now, NULL);
            return;
        }
        if (self->polling == PGRES_POLLING_OK) {
            if (PQsetnonblocking (self->conn, 1) != 0) {
                s_fail (self, now, NULL);
                return;
            }
            aigw_debug ("dbwatch %s: connected", self->label);
            s_send (self, now, S_LISTENING);
            return;
        }
    }
    if (now >= self->deadline)
        s_fail (self, now, "no connection within the deadline");
}

//  Handles the end of the statement in flight (PQgetResult gave NULL):
//  after LISTEN, runs the query; after the query, returns its snapshot
//  (caller owns it) and runs it again if a NOTIFY came meanwhile. May
//  leave SELF WAITING after s_fail.
static PGresult *
s_statement_done (aigw_dbwatch_t *self, int64_t now)
{
    if (self->state == S_LISTENING) {
        if (self->failed)
            s_fail (self, now, "LISTEN failed");
        else
            s_send (self, now, S_QUERYING);
        return NULL;
    }
    assert (self->state == S_QUERYING);
    self->state = S_IDLE;
    PGresult *snapshot = NULL;
    if (self->failed || !self->result) {
        //  An SQL error: keep the connection, run again after a while.
        PQclear (self->result);
        self->rerun_at = now + self->rerun_backoff_ms;
        self->rerun_backoff_ms *= 2;
        if (self->rerun_backoff_ms > AIGW_DBWATCH_BACKOFF_MAX_MS)
            self->rerun_backoff_ms = AIGW_DBWATCH_BACKOFF_MAX_MS;
    }
    else {
        snapshot = self->result;
        self->snapshots++;
        self->rerun_at = 0;
        self->backoff_ms = self->rerun_backoff_ms = AIGW_DBWATCH_BACKOFF_MIN_MS;
    }
    self->result = NULL;
    if (self->dirty)
        s_send (self, now, S_QUERYING);
    return snapshot;
}

//  Reads what the server sent, notes NOTIFYs, collects results, and starts
//  a query when one is due. Returns a snapshot or NULL; may leave SELF
//  WAITING after s_fail.
static PGresult *
s_io_step (aigw_dbwatch_t *self, int64_t now)
{
    if (self->flushing && s_flush (self, now))
        return NULL;
    if (!PQconsumeInput (self->conn) || PQstatus (self->conn) == CONNECTION_BAD) {
        s_fail (self, now, NULL);
        return NULL;
    }
    PGnotify *notify;
    while ((notify = PQnotifies (self->conn))) {
        PQfreemem (notify);
        //  While LISTENING, the query that follows sees the change anyway.
        if (self->state != S_LISTENING)
            self->dirty = true;
    }
    PGresult *snapshot = NULL;
    while ((self->state == S_LISTENING || self->state == S_QUERYING)
           && !PQisBusy (self->conn)) {
        PGresult *result = PQgetResult (self->conn);
        if (!result) {
            assert (!snapshot);   //  a new statement cannot be answered yet
            snapshot = s_statement_done (self, now);
            if (self->state == S_WAITING)
                return snapshot;
            continue;
        }
        ExecStatusType status = PQresultStatus (result);
        bool ok = self->state == S_LISTENING ? status == PGRES_COMMAND_OK
                                             : status == PGRES_TUPLES_OK;
        if (ok && self->state == S_QUERYING && !self->result)
            self->result = result;
        else {
            if (!ok) {
                //  The primary message only: DETAIL may quote row data.
                char message[S_MESSAGE_MAX];
                const char *primary = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
                s_message (self, primary ? primary : PQresStatus (status), message,
                           sizeof message);
                aigw_warn ("dbwatch %s: %s: %s", self->label,
                           self->state == S_LISTENING ? "LISTEN" : "snapshot query", message);
                self->failed = true;
            }
            PQclear (result);
        }
    }
    if (self->state == S_IDLE && (self->dirty || (self->rerun_at && now >= self->rerun_at))) {
        self->rerun_at = 0;
        s_send (self, now, S_QUERYING);
    }
    if ((self->state == S_LISTENING || self->state == S_QUERYING) && now >= self->deadline)
        s_fail (self, now, "no answer within the deadline");
    return snapshot;
}


//  --------------------------------------------------------------------------
//  Public API

//  Create a watcher; NULL on bad arguments or out of memory. Does not
//  connect yet. Caller owns the result.
aigw_dbwatch_t *
aigw_dbwatch_new (const char *conninfo, const char *channel, const char *sql,
                  int64_t timeout_ms)
{
    if (!conninfo || !s_channel_valid (channel) || !sql || !*sql || timeout_ms < 1
        || timeout_ms > AIGW_DBWATCH_TIMEOUT_MAX_MS)
        return NULL;
    aigw_dbwatch_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = strdup (conninfo);
    self->sql = strdup (sql);
    if (!self->conninfo || !self->sql || s_parse_conninfo (self, conninfo)) {
        aigw_dbwatch_destroy (&self);
        return NULL;
    }
    snprintf (self->listen, sizeof self->listen, "LISTEN \"%s\"", channel);
    self->timeout_ms = timeout_ms;
    self->state = S_WAITING;
    self->retry_at = INT64_MIN; //  connect at the first process call
    self->backoff_ms = self->rerun_backoff_ms = AIGW_DBWATCH_BACKOFF_MIN_MS;
    return self;
}

//  Close, wipe the conninfo, free; safe on NULL and twice.
void
aigw_dbwatch_destroy (aigw_dbwatch_t **self_p)
{
    assert (self_p);
    aigw_dbwatch_t *self = *self_p;
    if (!self)
        return;
    PQclear (self->result);
    PQfinish (self->conn);
    s_strfree (&self->conninfo);
    s_strfree (&self->password);
    free (self->sql);
    free (self);
    *self_p = NULL;
}

//  The socket to poll now, -1 while waiting to reconnect.
int
aigw_dbwatch_fd (aigw_dbwatch_t *self)
{
    assert (self);
    return self->conn ? PQsocket (self->conn) : -1;
}

//  ZMQ_POLLIN and/or ZMQ_POLLOUT wanted now; 0 without a socket.
short
aigw_dbwatch_events (aigw_dbwatch_t *self)
{
    assert (self);
    switch (self->state) {
    case S_WAITING:
        return 0;
    case S_CONNECTING:
        return self->polling == PGRES_POLLING_READING ? ZMQ_POLLIN : ZMQ_POLLOUT;
    default:
        return (short) (ZMQ_POLLIN | (self->flushing ? ZMQ_POLLOUT : 0));
    }
}

//  Ms from NOW until process is due regardless of the socket; -1 = none.
int
aigw_dbwatch_timeout (aigw_dbwatch_t *self, int64_t now)
{
    assert (self);
    int64_t at = -1;
    if (self->state == S_WAITING)
        at = self->retry_at;
    else if (self->state == S_IDLE)
        at = self->rerun_at ? self->rerun_at : -1;
    else
        at = self->deadline;
    if (at == -1)
        return -1;
    if (at <= now)
        return 0;
    return at - now > INT_MAX ? INT_MAX : (int) (at - now);
}

//  Make progress; a new snapshot the caller owns (PQclear), or NULL.
PGresult *
aigw_dbwatch_process (aigw_dbwatch_t *self, int64_t now)
{
    assert (self);
    if (self->state == S_WAITING) {
        if (now < self->retry_at)
            return NULL;
        s_connect_start (self, now);
    }
    if (self->state == S_CONNECTING)
        s_connect_step (self, now);
    if (self->state == S_WAITING || self->state == S_CONNECTING)
        return NULL;
    return s_io_step (self, now);
}

//  True while connected (listening, querying or idle).
bool
aigw_dbwatch_connected (aigw_dbwatch_t *self)
{
    assert (self);
    return self->state != S_WAITING && self->state != S_CONNECTING;
}

//  Snapshots returned so far.
uint64_t
aigw_dbwatch_snapshots (aigw_dbwatch_t *self)
{
    assert (self);
    return self->snapshots;
}


//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_CALL_MAX_MS 100  //  longest one process call may take: it never waits
#define S_TEST_SQL_MAX 512      //  a test statement
#define S_TEST_NAME_MAX 64      //  the test's table name
#define S_TEST_NOTIFY_MAX 96    //  "NOTIFY channel"
#define S_TEST_LOG_MAX 4096     //  captured log text examined

//  What one s_test_run saw.
typedef struct {
    bool saw_down;              //  fd was -1 at some point
    int failures;               //  waiting periods entered (timeout jumped up with fd -1)
    int wait_ms[4];             //  the timeout at the start of each of the first four
} s_test_seen_t;

//  Drives WATCH like an actor would, with zmq_poll on its fd, for up to
//  FOR_MS. Returns the first snapshot if STOP, else the last one (earlier
//  ones are cleared), or NULL; caller owns it. Asserts that no process call
//  blocks. SEEN (optional) records what the run observed.
static PGresult *
s_test_run (aigw_dbwatch_t *watch, int64_t for_ms, bool stop, s_test_seen_t *seen)
{
    int64_t end = zclock_mono () + for_ms;
    PGresult *last = NULL;
    int prev_fd = aigw_dbwatch_fd (watch);
    int prev_timeout = -1;
    for (int64_t now = zclock_mono (); now < end; now = zclock_mono ()) {
        int fd = aigw_dbwatch_fd (watch);
        short events = aigw_dbwatch_events (watch);
        int timeout = aigw_dbwatch_timeout (watch, now);
        assert ((fd < 0) == (events == 0));
        int64_t wait = end - now;
        if (timeout >= 0 && timeout < wait)
            wait = timeout;
        zmq_pollitem_t item = {.socket = NULL, .fd = fd, .events = events};
        zmq_poll (fd >= 0 ? &item : NULL, fd >= 0 ? 1 : 0, (long) wait);
        int64_t started = zclock_mono ();
        PGresult *result = aigw_dbwatch_process (watch, started);
        assert (zclock_mono () - started < S_TEST_CALL_MAX_MS);
        fd = aigw_dbwatch_fd (watch);
        timeout = aigw_dbwatch_timeout (watch, zclock_mono ());
        if (seen && fd < 0) {
            seen->saw_down = true;
            assert (!aigw_dbwatch_connected (watch) && aigw_dbwatch_events (watch) == 0);
            if (prev_fd >= 0 || timeout > prev_timeout) {
                if (seen->failures < 4)
                    seen->wait_ms[seen->failures] = timeout;
                seen->failures++;
            }
        }
        prev_fd = fd;
        prev_timeout = timeout;
        if (result && stop)
            return result;
        if (result) {
            PQclear (last);
            last = result;
        }
    }
    return last;
}

//  Runs SQL on the blocking test connection CONN; asserts it worked.
static void
s_test_exec (PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        printf ("\n    %s: %s", sql, PQerrorMessage (conn));
    assert (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK);
    PQclear (result);
}

//  Selftest: public API only. The argument checks and a closed port run
//  anywhere; the rest needs DATABASE_URL (tests/run.sh exports one) and
//  skips with a note without it. Uses its own table and channel.
void
aigw_dbwatch_test (bool verbose)
{
    //  Bad arguments.
    assert (!aigw_dbwatch_new (NULL, "c", "SELECT 1", 1000));
    const char *bad_channels[] = {NULL, "", "1x", "a-b", "Ab", "x;y", "a b", "\"a\""};
    for (size_t i = 0; i < sizeof bad_channels / sizeof bad_channels[0]; i++)
        assert (!aigw_dbwatch_new ("", bad_channels[i], "SELECT 1", 1000));
    char channel[AIGW_DBWATCH_CHANNEL_MAX + 2];
    memset (channel, 'c', sizeof channel - 1);
    channel[sizeof channel - 1] = 0;
    assert (!aigw_dbwatch_new ("", channel, "SELECT 1", 1000));
    channel[AIGW_DBWATCH_CHANNEL_MAX] = 0;
    aigw_dbwatch_t *watch = aigw_dbwatch_new ("", channel, "SELECT 1", 1000);
    assert (watch);
    aigw_dbwatch_destroy (&watch);
    assert (!aigw_dbwatch_new ("", "c", NULL, 1000));
    assert (!aigw_dbwatch_new ("", "c", "", 1000));
    assert (!aigw_dbwatch_new ("", "c", "SELECT 1", 0));
    assert (!aigw_dbwatch_new ("", "c", "SELECT 1", AIGW_DBWATCH_TIMEOUT_MAX_MS + 1));
    assert (!aigw_dbwatch_new ("host=x bogus=1", "c", "SELECT 1", 1000));
    assert (!aigw_dbwatch_new ("postgresql://u:pw%zz@h/d", "c", "SELECT 1", 1000));

    //  A fresh watcher has no socket and wants processing at once.
    watch = aigw_dbwatch_new ("postgresql:///x", "c_1", "SELECT 1", 1000);
    assert (watch);
    assert (aigw_dbwatch_fd (watch) == -1 && aigw_dbwatch_events (watch) == 0);
    assert (aigw_dbwatch_timeout (watch, zclock_mono ()) == 0);
    assert (!aigw_dbwatch_connected (watch) && aigw_dbwatch_snapshots (watch) == 0);
    aigw_dbwatch_destroy (&watch);
    aigw_dbwatch_destroy (&watch);

    //  A closed port: no crash, no socket between attempts, the timeout
    //  follows the backoff (1 s, then 2 s), and the log names the database
    //  but never the password. The log goes to stderr: capture it.
    aigw_log_level_t level = aigw_log_level ();
    aigw_log_set_level (verbose ? AIGW_LOG_DEBUG : AIGW_LOG_WARN);
    char log_path[] = "/tmp/aigw-dbwatch-test-XXXXXX";
    int log_fd = mkstemp (log_path);
    assert (log_fd >= 0);
    fflush (stderr);
    int saved_stderr = dup (STDERR_FILENO);
    assert (saved_stderr >= 0 && dup2 (log_fd, STDERR_FILENO) >= 0);
    watch = aigw_dbwatch_new ("postgresql://aigw:s3cr3t-pw@127.0.0.1:1/nodb", "c", "SELECT 1",
                              2000);
    assert (watch);
    s_test_seen_t seen = {0};
    assert (s_test_run (watch, 2500, true, &seen) == NULL);
    fflush (stderr);
    assert (dup2 (saved_stderr, STDERR_FILENO) >= 0);
    close (saved_stderr);
    if (verbose)
        printf ("\n    closed port: %d failures, waits %d, %d ms", seen.failures,
                seen.wait_ms[0], seen.wait_ms[1]);
    assert (seen.failures == 2);
    assert (seen.wait_ms[0] > 900 && seen.wait_ms[0] <= AIGW_DBWATCH_BACKOFF_MIN_MS);
    assert (seen.wait_ms[1] > 1900 && seen.wait_ms[1] <= 2 * AIGW_DBWATCH_BACKOFF_MIN_MS);
    assert (aigw_dbwatch_fd (watch) == -1 && !aigw_dbwatch_connected (watch));
    int timeout = aigw_dbwatch_timeout (watch, zclock_mono ());
    assert (timeout > 0 && timeout <= 2 * AIGW_DBWATCH_BACKOFF_MIN_MS);
    assert (aigw_dbwatch_snapshots (watch) == 0);
    aigw_dbwatch_destroy (&watch);
    char log_text[S_TEST_LOG_MAX];
    ssize_t log_len = pread (log_fd, log_text, sizeof log_text - 1, 0);
    assert (log_len > 0);
    log_text[log_len] = 0;
    close (log_fd);
    unlink (log_path);
    if (verbose)
        printf ("\n    log: %s", log_text);
    assert (strstr (log_text, "127.0.0.1:1/nodb"));
    assert (!strstr (log_text, "s3cr3t-pw"));
    aigw_log_set_level (verbose ? AIGW_LOG_DEBUG : AIGW_LOG_ERROR);

    const char *url = getenv ("DATABASE_URL");
    if (!url || !*url) {
        //  Label pg: a missing database fails, it does not pass as skipped.
        fprintf (stderr, "dbwatch: DATABASE_URL is unset; this selftest needs PostgreSQL "
                         "(tests/run.sh starts one)\n");
        exit (1);
    }
    PGconn *admin = PQconnectdb (url);
    assert (PQstatus (admin) == CONNECTION_OK);
    s_test_exec (admin, "SET client_min_messages TO warning");
    char table[S_TEST_NAME_MAX];
    snprintf (table, sizeof table, "aigw_dbwatch_test_%d", (int) getpid ());
    snprintf (channel, sizeof channel, "aigw_dbwatch_test_%d", (int) getpid ());
    char sql[S_TEST_SQL_MAX];
    char notify[S_TEST_NOTIFY_MAX];
    snprintf (notify, sizeof notify, "NOTIFY %s", channel);
    snprintf (sql, sizeof sql,
              "DROP TABLE IF EXISTS %s; CREATE TABLE %s (v int, delay float8);"
              " INSERT INTO %s VALUES (1, 0)",
              table, table, table);
    s_test_exec (admin, sql);
    char query[S_TEST_SQL_MAX];
    snprintf (query, sizeof query, "SELECT v, pg_backend_pid (), pg_sleep (delay) FROM %s",
              table);
    watch = aigw_dbwatch_new (url, channel, query, 5000);
    assert (watch);

    //  The first snapshot, on connect.
    PGresult *result = s_test_run (watch, 5000, true, NULL);
    assert (result && PQntuples (result) == 1);
    assert (strcmp (PQgetvalue (result, 0, 0), "1") == 0);
    int backend = atoi (PQgetvalue (result, 0, 1));
    PQclear (result);
    assert (aigw_dbwatch_connected (watch) && aigw_dbwatch_snapshots (watch) == 1);
    assert (aigw_dbwatch_fd (watch) >= 0);
    assert (aigw_dbwatch_timeout (watch, zclock_mono ()) == -1);
    //  Quiet without a NOTIFY.
    assert (s_test_run (watch, 300, false, NULL) == NULL);
    assert (aigw_dbwatch_snapshots (watch) == 1);

    //  A NOTIFY brings a new snapshot within 2 s.
    snprintf (sql, sizeof sql, "UPDATE %s SET v = 2; %s", table, notify);
    s_test_exec (admin, sql);
    int64_t started = zclock_mono ();
    result = s_test_run (watch, 2000, true, NULL);
    assert (result && strcmp (PQgetvalue (result, 0, 0), "2") == 0);
    assert (zclock_mono () - started < 2000);
    PQclear (result);
    assert (aigw_dbwatch_snapshots (watch) == 2);

    //  Several NOTIFYs during a slow query: exactly one more run after it.
    snprintf (sql, sizeof sql, "UPDATE %s SET delay = 1; %s", table, notify);
    s_test_exec (admin, sql);
    assert (s_test_run (watch, 300, false, NULL) == NULL);  //  the slow run is on
    snprintf (sql, sizeof sql, "UPDATE %s SET v = 3", table);
    s_test_exec (admin, sql);
    for (int i = 0; i < 3; i++) {
        snprintf (sql, sizeof sql, "%s, 'n%d'", notify, i);
        s_test_exec (admin, sql);
    }
    result = s_test_run (watch, 4000, false, NULL);
    if (verbose)
        printf ("\n    snapshots after the slow runs: %" PRIu64, aigw_dbwatch_snapshots (watch));
    assert (result && strcmp (PQgetvalue (result, 0, 0), "3") == 0);
    PQclear (result);
    assert (aigw_dbwatch_snapshots (watch) == 4);
    snprintf (sql, sizeof sql, "UPDATE %s SET delay = 0", table);
    s_test_exec (admin, sql);

    //  The backend is killed: the watcher reconnects and delivers a fresh
    //  snapshot from a new backend.
    snprintf (sql, sizeof sql, "SELECT pg_terminate_backend (%d)", backend);
    s_test_exec (admin, sql);
    memset (&seen, 0, sizeof seen);
    result = s_test_run (watch, 5000, true, &seen);
    assert (result && strcmp (PQgetvalue (result, 0, 0), "3") == 0);
    assert (atoi (PQgetvalue (result, 0, 1)) != backend);
    PQclear (result);
    assert (seen.saw_down && seen.failures == 1);
    assert (aigw_dbwatch_connected (watch) && aigw_dbwatch_snapshots (watch) == 5);
    aigw_dbwatch_destroy (&watch);

    //  A query that passes its deadline: the connection goes, a reconnect
    //  follows the backoff, no snapshot.
    watch = aigw_dbwatch_new (url, channel, "SELECT pg_sleep (2)", 300);
    assert (watch);
    memset (&seen, 0, sizeof seen);
    assert (s_test_run (watch, 1000, false, &seen) == NULL);
    assert (seen.failures == 1 && seen.wait_ms[0] > 900);
    assert (aigw_dbwatch_fd (watch) == -1 && !aigw_dbwatch_connected (watch));
    timeout = aigw_dbwatch_timeout (watch, zclock_mono ());
    assert (timeout > 0 && timeout <= AIGW_DBWATCH_BACKOFF_MIN_MS);
    assert (aigw_dbwatch_snapshots (watch) == 0);
    aigw_dbwatch_destroy (&watch);

    //  A query error: no snapshot, the connection stays, a rerun is due.
    watch = aigw_dbwatch_new (url, channel, "SELECT 1 / count (*)::int FROM pg_class "
                                            "WHERE false", 2000);
    assert (watch);
    memset (&seen, 0, sizeof seen);
    assert (s_test_run (watch, 800, false, &seen) == NULL);
    assert (aigw_dbwatch_connected (watch) && !seen.saw_down);
    timeout = aigw_dbwatch_timeout (watch, zclock_mono ());
    assert (timeout >= 0 && timeout <= AIGW_DBWATCH_BACKOFF_MIN_MS);
    s_test_exec (admin, notify);
    assert (s_test_run (watch, 500, false, &seen) == NULL);
    assert (aigw_dbwatch_connected (watch) && !seen.saw_down);
    assert (aigw_dbwatch_snapshots (watch) == 0);
    aigw_dbwatch_destroy (&watch);

    snprintf (sql, sizeof sql, "DROP TABLE %s", table);
    s_test_exec (admin, sql);
    PQfinish (admin);
    aigw_log_set_level (level);
}
