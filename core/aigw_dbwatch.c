/*  aigw_dbwatch: keeps one snapshot query fresh over an aigw_pgconn (see
    aigw_dbwatch.h).

    The connection (aigw_pgconn) connects, LISTENs on the channel first,
    and reconnects with backoff; this file adds the snapshot: it runs on
    every "up" and after each NOTIFY, once more after a run during which
    NOTIFYs came, and again after a backoff when it fails on the server.
    The snapshot runs with the extended protocol (PQsendQueryParams),
    which refuses a second statement. */
#include "aigw_dbwatch.h"
#include "aigw_log.h"
#include "aigw_pgconn.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <czmq.h>

//  Longest log message taken from the server, NUL included.
#define S_MESSAGE_MAX 256

struct _aigw_dbwatch_t {
    aigw_pgconn_t *conn;       //  the connection, LISTENing on the channel
    char *sql;                 //  the snapshot query
    int64_t timeout_ms;        //  query deadline
    int64_t now;               //  the clock of the process call under way
    bool dirty;                //  a NOTIFY came while querying: run once more
    PGresult *snapshot;        //  delivered by the last query, for process to return
    int64_t rerun_at;          //  IDLE: when to rerun a failed query, 0 = not due
    int64_t rerun_backoff_ms;  //  next wait before a failed query runs again
    uint64_t snapshots;        //  snapshots returned so far
};

static void s_query_done (void *arg, PGresult *result, aigw_pgconn_status_t status);

//  Sends the snapshot query. Leaves the connection BUSY, or DOWN.
static void
s_send (aigw_dbwatch_t *self)
{
    self->dirty = false;
    self->rerun_at = 0;
    aigw_pgconn_send (self->conn, self->sql, 0, NULL, self->now + self->timeout_ms, s_query_done,
                      self, self->now);
}

//  The connection is up and LISTENing: read the snapshot.
static void
s_up (void *arg)
{
    s_send ((aigw_dbwatch_t *) arg);
}

//  The connection went: forget what was due; "up" reads afresh.
static void
s_down (void *arg, const char *why)
{
    aigw_dbwatch_t *self = arg;
    self->dirty = false;
    self->rerun_at = 0;
}

//  A NOTIFY: read again (while LISTENing, the first read sees it anyway).
static void
s_notify (void *arg, const char *payload)
{
    aigw_dbwatch_t *self = arg;
    aigw_pgconn_state_t state = aigw_pgconn_state (self->conn);
    if (state == AIGW_PGCONN_IDLE || state == AIGW_PGCONN_BUSY)
        self->dirty = true;
}

//  The snapshot query ended: keep a snapshot for process to return, or
//  schedule a rerun after an SQL error (the connection stays).
static void
s_query_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    aigw_dbwatch_t *self = arg;
    if (status != AIGW_PGCONN_OK)
        return;  //  the connection was dropped: "up" reads again
    if (PQresultStatus (result) == PGRES_TUPLES_OK) {
        PQclear (self->snapshot);
        self->snapshot = result;
        self->snapshots++;
        self->rerun_at = 0;
        self->rerun_backoff_ms = AIGW_DBWATCH_BACKOFF_MIN_MS;
    }
    else {
        //  The primary message only: DETAIL may quote row data.
        const char *primary = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
        char message[S_MESSAGE_MAX];
        snprintf (message, sizeof message, "%s",
                  primary ? primary : PQresStatus (PQresultStatus (result)));
        message[strcspn (message, "\r\n")] = 0;
        aigw_warn ("%s: snapshot query: %s", aigw_pgconn_label (self->conn), message);
        PQclear (result);
        self->rerun_at = self->now + self->rerun_backoff_ms;
        self->rerun_backoff_ms *= 2;
        if (self->rerun_backoff_ms > AIGW_DBWATCH_BACKOFF_MAX_MS)
            self->rerun_backoff_ms = AIGW_DBWATCH_BACKOFF_MAX_MS;
    }
    if (self->dirty)
        s_send (self);
}

//  --------------------------------------------------------------------------
//  Public API

//  Create a watcher; NULL on bad arguments or out of memory. Does not
//  connect yet. Caller owns the result.
aigw_dbwatch_t *
aigw_dbwatch_new (const char *conninfo, const char *channel, const char *sql, int64_t timeout_ms)
{
    if (!conninfo || !channel || !sql || !*sql || timeout_ms < 1
        || timeout_ms > AIGW_DBWATCH_TIMEOUT_MAX_MS)
        return NULL;
    aigw_dbwatch_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    aigw_pgconn_settings_t settings = {.name = "dbwatch",
                                       .application_name = AIGW_DBWATCH_APPLICATION_NAME,
                                       .listen = channel,
                                       .connect_timeout_ms = timeout_ms,
                                       .backoff_min_ms = AIGW_DBWATCH_BACKOFF_MIN_MS,
                                       .backoff_max_ms = AIGW_DBWATCH_BACKOFF_MAX_MS};
    aigw_pgconn_events_t events = {s_up, s_down, s_notify, self};
    self->conn = aigw_pgconn_new (conninfo, &settings, &events);
    self->sql = strdup (sql);
    if (!self->conn || !self->sql) {
        aigw_dbwatch_destroy (&self);
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    self->rerun_backoff_ms = AIGW_DBWATCH_BACKOFF_MIN_MS;
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
    aigw_pgconn_destroy (&self->conn);
    PQclear (self->snapshot);
    free (self->sql);
    free (self);
    *self_p = NULL;
}

//  The socket to poll now, -1 while waiting to reconnect.
int
aigw_dbwatch_fd (aigw_dbwatch_t *self)
{
    assert (self);
    return aigw_pgconn_fd (self->conn);
}

//  ZMQ_POLLIN and/or ZMQ_POLLOUT wanted now; 0 without a socket.
short
aigw_dbwatch_events (aigw_dbwatch_t *self)
{
    assert (self);
    return aigw_pgconn_events (self->conn);
}

//  Ms from NOW until process is due regardless of the socket; -1 = none.
int
aigw_dbwatch_timeout (aigw_dbwatch_t *self, int64_t now)
{
    assert (self);
    if (aigw_pgconn_state (self->conn) == AIGW_PGCONN_IDLE) {
        if (self->dirty)
            return 0;
        if (!self->rerun_at)
            return -1;
        if (self->rerun_at <= now)
            return 0;
        return self->rerun_at - now > INT_MAX ? INT_MAX : (int) (self->rerun_at - now);
    }
    return aigw_pgconn_timeout (self->conn, now);
}

//  Make progress; a new snapshot the caller owns (PQclear), or NULL.
PGresult *
aigw_dbwatch_process (aigw_dbwatch_t *self, int64_t now)
{
    assert (self);
    self->now = now;
    //  The caller polled without telling what came: read whatever did.
    aigw_pgconn_process (self->conn, AIGW_PGCONN_ANY, now);
    if (aigw_pgconn_state (self->conn) == AIGW_PGCONN_IDLE
        && (self->dirty || (self->rerun_at && now >= self->rerun_at)))
        s_send (self);
    PGresult *snapshot = self->snapshot;
    self->snapshot = NULL;
    return snapshot;
}

//  True while connected (listening, querying or idle).
bool
aigw_dbwatch_connected (aigw_dbwatch_t *self)
{
    assert (self);
    aigw_pgconn_state_t state = aigw_pgconn_state (self->conn);
    return state != AIGW_PGCONN_DOWN && state != AIGW_PGCONN_CONNECTING;
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

#define S_TEST_SQL_MAX    512   //  a test statement
#define S_TEST_NAME_MAX   64    //  the test's table name
#define S_TEST_NOTIFY_MAX 96    //  "NOTIFY channel"
#define S_TEST_LOG_MAX    4096  //  captured log text examined

//  What one s_test_run saw.
typedef struct {
    bool saw_down;     //  fd was -1 at some point
    int failures;      //  waiting periods entered (timeout jumped up with fd -1)
    int wait_ms[4];    //  the timeout at the start of each of the first four
    bool primed;       //  a run went before: the two below carry on from it
    int prev_fd;       //  the fd at the end of the last run
    int prev_timeout;  //  the timeout at the end of the last run
} s_test_seen_t;

//  Process calls the selftest made, and those the thread slept in.
static int s_test_calls;
static int s_test_slept;

//  Drives WATCH like an actor would, with zmq_poll on its fd, for up to
//  FOR_MS. Returns the first snapshot if STOP, else the last one (earlier
//  ones are cleared), or NULL; caller owns it. Counts the process calls the
//  thread slept in (the selftest bounds them). SEEN (optional) records what
//  the run observed.
static PGresult *
s_test_run (aigw_dbwatch_t *watch, int64_t for_ms, bool stop, s_test_seen_t *seen)
{
    int64_t end = zclock_mono () + for_ms;
    PGresult *last = NULL;
    int prev_fd = seen && seen->primed ? seen->prev_fd : aigw_dbwatch_fd (watch);
    int prev_timeout = seen && seen->primed ? seen->prev_timeout : -1;
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
        //  It never waits on the network: the thread seldom sleeps in the
        //  call (a voluntary context switch). Seldom, not never: a loaded
        //  machine can make it wait for a lock in malloc or the kernel.
        struct rusage before, after;
        getrusage (RUSAGE_THREAD, &before);
        PGresult *result = aigw_dbwatch_process (watch, zclock_mono ());
        getrusage (RUSAGE_THREAD, &after);
        s_test_calls++;
        if (after.ru_nvcsw != before.ru_nvcsw)
            s_test_slept++;
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
        if (seen) {
            seen->primed = true;
            seen->prev_fd = fd;
            seen->prev_timeout = timeout;
        }
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
    watch
        = aigw_dbwatch_new ("postgresql://aigw:s3cr3t-pw@127.0.0.1:1/nodb", "c", "SELECT 1", 2000);
    assert (watch);
    s_test_seen_t seen = {0};
    //  Until the second failure (about 1 s in), in slices: a loaded machine
    //  stretches the wait, the backoff it reports must not change.
    for (int64_t until = zclock_mono () + 10000; seen.failures < 2 && zclock_mono () < until;)
        assert (s_test_run (watch, 100, true, &seen) == NULL);
    fflush (stderr);
    assert (dup2 (saved_stderr, STDERR_FILENO) >= 0);
    close (saved_stderr);
    if (verbose)
        printf ("\n    closed port: %d failures, waits %d, %d ms", seen.failures, seen.wait_ms[0],
                seen.wait_ms[1]);
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
    snprintf (query, sizeof query, "SELECT v, pg_backend_pid (), pg_sleep (delay) FROM %s", table);
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
    watch = aigw_dbwatch_new (url, channel,
                              "SELECT 1 / count (*)::int FROM pg_class "
                              "WHERE false",
                              2000);
    assert (watch);
    memset (&seen, 0, sizeof seen);
    for (int64_t until = zclock_mono () + 10000;
         !aigw_dbwatch_connected (watch) && zclock_mono () < until;)
        assert (s_test_run (watch, 50, false, &seen) == NULL);
    assert (s_test_run (watch, 300, false, &seen) == NULL);
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
    if (verbose)
        printf ("\n    dbwatch: slept in %d of %d process calls", s_test_slept, s_test_calls);
    assert (s_test_slept * 10 <= s_test_calls);
    aigw_log_set_level (level);
}
