/*  aigw_pgconn: one asynchronous PostgreSQL connection (see aigw_pgconn.h).

    States: DOWN (reconnect at retry_at) -> CONNECTING (PQconnectPoll until
    OK, within the connect deadline) -> LISTENING (LISTEN sent; skipped
    without a channel) -> IDLE <-> BUSY (a statement running, within its
    deadline). Any connection error, and any deadline passed, goes back to
    DOWN with the backoff. LISTEN goes before the owner hears "up", so no
    change between the owner's first read and the LISTEN can be missed. */
#include "aigw_pgconn.h"
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

//  Longest log message taken from libpq or the server, NUL included.
#define S_MESSAGE_MAX 256
//  PQconnectPoll steps per _process call: each step is taken only when
//  the socket is ready, so this only bounds a pathological loop.
#define S_CONNECT_STEPS_MAX 32
//  "LISTEN \"CHANNEL\"" with its NUL.
#define S_LISTEN_MAX (AIGW_PGCONN_CHANNEL_MAX + 16)
//  "-c statement_timeout=N" with its NUL.
#define S_OPTIONS_MAX 64

struct _aigw_pgconn_t {
    char *conninfo;                     //  libpq conninfo; may hold a password, wiped on destroy
    char *password;                     //  the conninfo's password, or NULL; wiped on destroy
    char label[AIGW_PGCONN_LABEL_MAX];  //  "name host:port/db" for log lines
    char *application_name;             //  settings.application_name, copied
    char listen[S_LISTEN_MAX];          //  the LISTEN statement, "" for none
    char options[S_OPTIONS_MAX];        //  the session's statement_timeout, "" for none
    int64_t connect_timeout_ms;         //  bound on connecting and the LISTEN
    int64_t backoff_min_ms;             //  first reconnect wait
    int64_t backoff_max_ms;             //  its cap
    aigw_pgconn_events_t events;        //  owner callbacks
    PGconn *conn;                       //  libpq handle, NULL while DOWN
    aigw_pgconn_state_t state;          //  where the connection is
    PostgresPollingStatusType polling;  //  CONNECTING: what PQconnectPoll wants
    bool flushing;                      //  libpq holds unsent output: poll for writing
    bool failed;                        //  LISTENING: the LISTEN answered an error
    bool warned;                        //  this run of failures was logged as a warning
    PGresult *result;                   //  BUSY: the statement's last result so far
    aigw_pgconn_done_fn *done;          //  BUSY: the statement's callback
    void *done_arg;                     //  its argument
    int64_t deadline;                   //  connect, LISTEN or statement deadline
    int64_t retry_at;                   //  DOWN: when to reconnect
    int64_t backoff_ms;                 //  next reconnect wait
    const char *copy_data;              //  BUSY with a COPY: the rows (the caller's)
    size_t copy_size;                   //  bytes in copy_data
    size_t copy_sent;                   //  bytes libpq took so far
    bool copying;                       //  the server waits for the rows
    bool copy_ended;                    //  PQputCopyEnd went through
};

//  --------------------------------------------------------------------------
//  Helpers

//  True if CHANNEL is a plain lower-case SQL identifier PostgreSQL keeps
//  as is.
static bool
s_channel_valid (const char *channel)
{
    size_t len = channel ? strlen (channel) : 0;
    if (len == 0 || len > AIGW_PGCONN_CHANNEL_MAX)
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

//  Parses CONNINFO: fills SELF's label (after NAME) and password. Returns
//  0, or -1 if libpq cannot parse it (its message is not kept: it may
//  quote the password) or out of memory.
static int
s_parse_conninfo (aigw_pgconn_t *self, const char *name, const char *conninfo)
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
    snprintf (self->label, sizeof self->label, "%s %s%s%s/%s", name,
              host       ? host
              : hostaddr ? hostaddr
                         : "(default host)",
              port ? ":" : "", port ? port : "", dbname ? dbname : "(default database)");
    for (PQconninfoOption *option = options; option->keyword; option++)
        if (option->val)
            OPENSSL_cleanse (option->val, strlen (option->val));
    PQconninfoFree (options);
    return rc;
}

//  Copies TEXT (a libpq or server message) into OUT for a log line: one
//  line, and withheld if it quotes the password.
static void
s_message (const aigw_pgconn_t *self, const char *text, char *out, size_t size)
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
    aigw_pgconn_t *self = arg;
    char message[S_MESSAGE_MAX];
    s_message (self, text, message, sizeof message);
    aigw_debug ("%s: server says: %s", self->label, message);
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

//  Closes the connection after WHY (NULL: libpq's own message), fails the
//  running statement with STATUS, schedules the reconnect, and tells the
//  owner. The first failure of a run is a warning, the rest debug lines.
static void
s_fail (aigw_pgconn_t *self, int64_t now, const char *why, aigw_pgconn_status_t status)
{
    char message[S_MESSAGE_MAX];
    s_message (self,
               why          ? why
               : self->conn ? PQerrorMessage (self->conn)
                            : "out of memory",
               message, sizeof message);
    bool was_up = self->state == AIGW_PGCONN_IDLE || self->state == AIGW_PGCONN_BUSY;
    if (was_up || !self->warned)
        aigw_warn ("%s: %s; reconnecting in %" PRId64 " ms", self->label, message,
                   self->backoff_ms);
    else
        aigw_debug ("%s: %s; reconnecting in %" PRId64 " ms", self->label, message,
                    self->backoff_ms);
    self->warned = true;
    PQclear (self->result);
    self->result = NULL;
    PQfinish (self->conn);
    self->conn = NULL;
    self->state = AIGW_PGCONN_DOWN;
    self->flushing = self->failed = false;
    self->copying = false;
    self->copy_data = NULL;
    self->retry_at = now + self->backoff_ms;
    self->backoff_ms *= 2;
    if (self->backoff_ms > self->backoff_max_ms)
        self->backoff_ms = self->backoff_max_ms;
    aigw_pgconn_done_fn *done = self->done;
    self->done = NULL;
    if (done)
        done (self->done_arg, NULL, status);
    if (self->events.down)
        self->events.down (self->events.arg, message);
}

//  Flushes what libpq holds. Returns 0, or -1 after s_fail.
static int
s_flush (aigw_pgconn_t *self, int64_t now)
{
    int rc = PQflush (self->conn);
    if (rc < 0) {
        s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
        return -1;
    }
    self->flushing = rc == 1;
    return 0;
}

//  The connection is up: start over the backoff, tell the owner.
static void
s_up (aigw_pgconn_t *self)
{
    self->state = AIGW_PGCONN_IDLE;
    self->backoff_ms = self->backoff_min_ms;
    self->warned = false;
    aigw_debug ("%s: connected", self->label);
    if (self->events.up)
        self->events.up (self->events.arg);
}

//  Starts a connection. Leaves SELF CONNECTING, or DOWN after s_fail.
static void
s_connect_start (aigw_pgconn_t *self, int64_t now)
{
    //  expand_dbname: the conninfo comes first, so these settings win over
    //  the same keywords in it.
    const char *keys[] = {"dbname",
                          "application_name",
                          "client_encoding",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          *self->options ? "options" : NULL,
                          NULL};
    const char *values[] = {self->conninfo,
                            self->application_name,
                            "UTF8",
                            "1",
                            AIGW_PGCONN_KEEPALIVE_IDLE_S,
                            AIGW_PGCONN_KEEPALIVE_INTERVAL_S,
                            AIGW_PGCONN_KEEPALIVE_COUNT,
                            self->options,
                            NULL};
    self->conn = PQconnectStartParams (keys, values, 1);
    self->state = AIGW_PGCONN_CONNECTING;
    self->polling = PGRES_POLLING_WRITING;  //  libpq's documented first step
    self->deadline = now + self->connect_timeout_ms;
    if (!self->conn || PQstatus (self->conn) == CONNECTION_BAD) {
        s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
        return;
    }
    PQsetNoticeProcessor (self->conn, s_notice, self);
}

//  Advances the connection while its socket is ready; on success LISTENs
//  or is up. PQconnectPoll must only run when the socket is ready: before
//  the TCP connect completes, it would take the socket as connected.
static void
s_connect_step (aigw_pgconn_t *self, int64_t now)
{
    for (int step = 0; step < S_CONNECT_STEPS_MAX; step++) {
        short want = self->polling == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (!s_ready (PQsocket (self->conn), want))
            break;
        self->polling = PQconnectPoll (self->conn);
        if (self->polling == PGRES_POLLING_FAILED) {
            s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
            return;
        }
        if (self->polling == PGRES_POLLING_OK) {
            if (PQsetnonblocking (self->conn, 1) != 0) {
                s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
                return;
            }
            if (!*self->listen) {
                s_up (self);
                return;
            }
            if (!PQsendQuery (self->conn, self->listen)) {
                s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
                return;
            }
            self->state = AIGW_PGCONN_LISTENING;
            self->failed = false;
            s_flush (self, now);
            return;
        }
    }
    if (now >= self->deadline)
        s_fail (self, now, "no connection within the deadline", AIGW_PGCONN_UNAVAILABLE);
}

//  The statement in flight has all its results (PQgetResult gave NULL).
static void
s_statement_done (aigw_pgconn_t *self, int64_t now)
{
    if (self->state == AIGW_PGCONN_LISTENING) {
        if (self->failed)
            s_fail (self, now, "LISTEN failed", AIGW_PGCONN_UNAVAILABLE);
        else
            s_up (self);
        return;
    }
    PGresult *result = self->result;
    aigw_pgconn_done_fn *done = self->done;
    self->result = NULL;
    self->done = NULL;
    self->copy_data = NULL;
    self->copying = false;
    self->state = AIGW_PGCONN_IDLE;
    done (self->done_arg, result, AIGW_PGCONN_OK);
}

//  Largest piece handed to PQputCopyData at once.
#define S_COPY_PIECE (256 * 1024)
//  Most bytes one _process call feeds, so that a big COPY shares the
//  owner's loop.
#define S_COPY_PASS_MAX (1024 * 1024)

//  Feeds the COPY's rows, then its end, as far as the socket takes them
//  now. Returns 0, or -1 after s_fail.
static int
s_copy_push (aigw_pgconn_t *self, int64_t now)
{
    size_t budget = S_COPY_PASS_MAX;
    while (self->copy_sent < self->copy_size) {
        if (budget == 0)
            return 0;  //  more at the next pass (the socket is polled for it)
        size_t piece = self->copy_size - self->copy_sent;
        if (piece > S_COPY_PIECE)
            piece = S_COPY_PIECE;
        int rc = PQputCopyData (self->conn, self->copy_data + self->copy_sent, (int) piece);
        if (rc < 0) {
            s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
            return -1;
        }
        if (rc == 0) {
            //  libpq's buffer is full: send what it holds, then wait for
            //  the socket when it could not all go.
            if (s_flush (self, now))
                return -1;
            if (self->flushing)
                return 0;
            continue;
        }
        self->copy_sent += piece;
        budget = budget > piece ? budget - piece : 0;
    }
    if (!self->copy_ended) {
        int rc = PQputCopyEnd (self->conn, NULL);
        if (rc < 0) {
            s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
            return -1;
        }
        if (rc == 0)
            return s_flush (self, now);
        self->copy_ended = true;
    }
    self->copying = false;
    return s_flush (self, now);
}

//  Reads what the server sent: notifications, then results. May leave SELF
//  DOWN after s_fail.
static void
s_io_step (aigw_pgconn_t *self, short revents, int64_t now)
{
    if (self->flushing && (revents & (ZMQ_POLLOUT | ZMQ_POLLERR)) && s_flush (self, now))
        return;
    if (self->copying && !self->flushing && s_copy_push (self, now))
        return;
    if (!(revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
        return;
    if (!PQconsumeInput (self->conn) || PQstatus (self->conn) == CONNECTION_BAD) {
        s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
        return;
    }
    PGnotify *notify;
    while (self->conn && (notify = PQnotifies (self->conn))) {
        if (self->events.notify)
            self->events.notify (self->events.arg, notify->extra);
        PQfreemem (notify);
    }
    while ((self->state == AIGW_PGCONN_LISTENING || self->state == AIGW_PGCONN_BUSY)
           && !PQisBusy (self->conn)) {
        PGresult *result = PQgetResult (self->conn);
        if (!result) {
            s_statement_done (self, now);
            continue;
        }
        if (PQresultStatus (result) == PGRES_COPY_IN) {
            PQclear (result);
            if (!self->copy_data) {
                //  A COPY FROM STDIN nobody gave rows for: end it.
                self->copy_size = self->copy_sent = 0;
                self->copy_data = "";
            }
            self->copying = true;
            self->copy_ended = false;
            if (s_copy_push (self, now) || self->copying)
                return;  //  more when the socket takes it
            continue;
        }
        if (self->state == AIGW_PGCONN_LISTENING) {
            if (PQresultStatus (result) != PGRES_COMMAND_OK) {
                char message[S_MESSAGE_MAX];
                const char *primary = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
                s_message (self, primary ? primary : PQresStatus (PQresultStatus (result)), message,
                           sizeof message);
                aigw_warn ("%s: LISTEN: %s", self->label, message);
                self->failed = true;
            }
            PQclear (result);
        }
        else {
            PQclear (self->result);
            self->result = result;
        }
    }
}

//  --------------------------------------------------------------------------
//  Public API

aigw_pgconn_t *
aigw_pgconn_new (const char *conninfo, const aigw_pgconn_settings_t *settings,
                 const aigw_pgconn_events_t *events)
{
    assert (settings);
    if (!conninfo || (settings->listen && !s_channel_valid (settings->listen))
        || settings->connect_timeout_ms <= 0 || settings->statement_timeout_ms < 0
        || settings->backoff_min_ms <= 0 || settings->backoff_max_ms < settings->backoff_min_ms)
        return NULL;
    aigw_pgconn_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = strdup (conninfo);
    self->application_name
        = strdup (settings->application_name ? settings->application_name : "aigw");
    if (!self->conninfo || !self->application_name
        || s_parse_conninfo (self, settings->name ? settings->name : "database", conninfo)) {
        aigw_pgconn_destroy (&self);
        return NULL;
    }
    if (settings->listen)
        snprintf (self->listen, sizeof self->listen, "LISTEN \"%s\"", settings->listen);
    if (settings->statement_timeout_ms)
        snprintf (self->options, sizeof self->options, "-c statement_timeout=%" PRId64,
                  settings->statement_timeout_ms);
    if (events)
        self->events = *events;
    self->connect_timeout_ms = settings->connect_timeout_ms;
    self->backoff_min_ms = self->backoff_ms = settings->backoff_min_ms;
    self->backoff_max_ms = settings->backoff_max_ms;
    self->state = AIGW_PGCONN_DOWN;
    self->retry_at = INT64_MIN;  //  connect at the first _process
    return self;
}

void
aigw_pgconn_destroy (aigw_pgconn_t **self_p)
{
    assert (self_p);
    aigw_pgconn_t *self = *self_p;
    if (!self)
        return;
    PQclear (self->result);
    PQfinish (self->conn);
    if (self->done)
        self->done (self->done_arg, NULL, AIGW_PGCONN_CANCELLED);
    s_strfree (&self->conninfo);
    s_strfree (&self->password);
    free (self->application_name);
    free (self);
    *self_p = NULL;
}

int
aigw_pgconn_connect (aigw_pgconn_t *self, int64_t now)
{
    assert (self);
    if (self->state == AIGW_PGCONN_DOWN)
        s_connect_start (self, now);
    return self->state == AIGW_PGCONN_DOWN ? -1 : 0;
}

void
aigw_pgconn_drop (aigw_pgconn_t *self, const char *why, int64_t now)
{
    assert (self);
    if (self->state != AIGW_PGCONN_DOWN)
        s_fail (self, now, why, AIGW_PGCONN_UNAVAILABLE);
}

int
aigw_pgconn_send (aigw_pgconn_t *self, const char *sql, int nparams, const char *const *params,
                  int64_t deadline, aigw_pgconn_done_fn *done, void *arg, int64_t now)
{
    assert (self && sql && done && nparams >= 0);
    if (self->state != AIGW_PGCONN_IDLE)
        return -1;
    if (!PQsendQueryParams (self->conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
        s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
        return -1;
    }
    self->state = AIGW_PGCONN_BUSY;
    self->deadline = deadline;
    self->done = done;
    self->done_arg = arg;
    int rc = PQflush (self->conn);
    if (rc < 0) {
        self->done = NULL;  //  the caller learns it from -1, not from DONE
        s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
        return -1;
    }
    self->flushing = rc == 1;
    return 0;
}

int
aigw_pgconn_copy (aigw_pgconn_t *self, const char *sql, const char *data, size_t size,
                  int64_t deadline, aigw_pgconn_done_fn *done, void *arg, int64_t now)
{
    assert (self && sql && done && (data || size == 0));
    if (self->state != AIGW_PGCONN_IDLE)
        return -1;
    if (!PQsendQuery (self->conn, sql)) {
        s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
        return -1;
    }
    self->state = AIGW_PGCONN_BUSY;
    self->deadline = deadline;
    self->done = done;
    self->done_arg = arg;
    self->copy_data = data ? data : "";
    self->copy_size = size;
    self->copy_sent = 0;
    self->copying = self->copy_ended = false;
    int rc = PQflush (self->conn);
    if (rc < 0) {
        self->done = NULL;
        s_fail (self, now, NULL, AIGW_PGCONN_UNAVAILABLE);
        return -1;
    }
    self->flushing = rc == 1;
    return 0;
}

int
aigw_pgconn_fd (aigw_pgconn_t *self)
{
    assert (self);
    return self->conn ? PQsocket (self->conn) : -1;
}

short
aigw_pgconn_events (aigw_pgconn_t *self)
{
    assert (self);
    if (!self->conn || PQsocket (self->conn) < 0)
        return 0;
    if (self->state == AIGW_PGCONN_CONNECTING)
        return self->polling == PGRES_POLLING_READING ? ZMQ_POLLIN : ZMQ_POLLOUT;
    return (short) (ZMQ_POLLIN | (self->flushing || self->copying ? ZMQ_POLLOUT : 0));
}

bool
aigw_pgconn_pollitem (aigw_pgconn_t *self, zmq_pollitem_t *item)
{
    int fd = self ? aigw_pgconn_fd (self) : -1;
    if (fd < 0)
        return false;
    *item = (zmq_pollitem_t){NULL, fd, aigw_pgconn_events (self), 0};
    return true;
}

int
aigw_pgconn_timeout (aigw_pgconn_t *self, int64_t now)
{
    assert (self);
    int64_t at;
    if (self->state == AIGW_PGCONN_DOWN)
        at = self->retry_at;
    else if (self->state == AIGW_PGCONN_IDLE)
        return -1;
    else
        at = self->deadline;
    if (at <= now)
        return 0;
    return at - now > INT_MAX ? INT_MAX : (int) (at - now);
}

void
aigw_pgconn_process (aigw_pgconn_t *self, short revents, int64_t now)
{
    assert (self);
    if (self->state == AIGW_PGCONN_DOWN) {
        if (now < self->retry_at)
            return;
        s_connect_start (self, now);
    }
    if (self->state == AIGW_PGCONN_CONNECTING) {
        s_connect_step (self, now);
        return;
    }
    //  Socket readiness first: answers that arrived beat their deadlines.
    if (self->state != AIGW_PGCONN_DOWN && revents)
        s_io_step (self, revents, now);
    if (self->state == AIGW_PGCONN_LISTENING && now >= self->deadline)
        s_fail (self, now, "no LISTEN answer within the deadline", AIGW_PGCONN_UNAVAILABLE);
    else if (self->state == AIGW_PGCONN_BUSY && now >= self->deadline)
        s_fail (self, now, "statement deadline passed", AIGW_PGCONN_TIMEOUT);
}

aigw_pgconn_state_t
aigw_pgconn_state (aigw_pgconn_t *self)
{
    assert (self);
    return self->state;
}

const char *
aigw_pgconn_label (aigw_pgconn_t *self)
{
    assert (self);
    return self->label;
}

//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_CALL_MAX_MS 100  //  longest one _process call may take: it never waits

//  What the owner callbacks saw.
typedef struct {
    int ups;                      //  up events
    int downs;                    //  down events
    int notifies;                 //  notifications
    char payload[64];             //  the last one's payload
    int done;                     //  statement callbacks
    aigw_pgconn_status_t status;  //  the last one's status
    PGresult *result;             //  the last one's result (the test clears it)
} s_test_seen_t;

static void
s_test_up (void *arg)
{
    ((s_test_seen_t *) arg)->ups++;
}

static void
s_test_down (void *arg, const char *why)
{
    ((s_test_seen_t *) arg)->downs++;
}

static void
s_test_notify (void *arg, const char *payload)
{
    s_test_seen_t *seen = arg;
    seen->notifies++;
    snprintf (seen->payload, sizeof seen->payload, "%s", payload);
}

static void
s_test_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    s_test_seen_t *seen = arg;
    seen->done++;
    seen->status = status;
    PQclear (seen->result);
    seen->result = result;
}

//  Drives C like an owner would, with zmq_poll on its socket, for up to
//  FOR_MS or until *UNTIL (optional) is at least TARGET. Asserts that no
//  _process call blocks. Returns the most milliseconds _timeout answered
//  while DOWN.
static int
s_test_run (aigw_pgconn_t *c, int64_t for_ms, const int *until, int target)
{
    int64_t end = zclock_mono () + for_ms;
    int longest = -1;
    for (int64_t now = zclock_mono (); now < end; now = zclock_mono ()) {
        if (until && *until >= target)
            break;
        int fd = aigw_pgconn_fd (c);
        short events = aigw_pgconn_events (c);
        int timeout = aigw_pgconn_timeout (c, now);
        assert ((fd < 0) == (events == 0));
        if (aigw_pgconn_state (c) == AIGW_PGCONN_DOWN && timeout > longest)
            longest = timeout;
        int64_t wait = timeout >= 0 && timeout < end - now ? timeout : end - now;
        zmq_pollitem_t item = {NULL, -1, 0, 0};
        bool polled = aigw_pgconn_pollitem (c, &item);
        assert (polled == (fd >= 0) && (!polled || (item.fd == fd && item.events == events)));
        if (polled)
            zmq_poll (&item, 1, (long) wait);
        else
            zclock_sleep ((int) wait);
        int64_t started = zclock_mono ();
        aigw_pgconn_process (c, item.revents, started);
        assert (zclock_mono () - started < S_TEST_CALL_MAX_MS);
    }
    return longest;
}

//  Selftest: public API only. Arguments and a closed port run anywhere;
//  the rest needs AIGW_TEST_DATABASE_URL or DATABASE_URL.
void
aigw_pgconn_test (bool verbose)
{
    aigw_log_level_t level = aigw_log_level ();
    aigw_log_set_level (verbose ? AIGW_LOG_DEBUG : AIGW_LOG_ERROR);
    aigw_pgconn_settings_t settings = {.name = "pgconn test",
                                       .application_name = "aigw-pgconn-test",
                                       .connect_timeout_ms = 2000,
                                       .backoff_min_ms = 200,
                                       .backoff_max_ms = 800};
    s_test_seen_t seen = {0};
    aigw_pgconn_events_t events = {s_test_up, s_test_down, s_test_notify, &seen};
    zmq_pollitem_t none = {NULL, -1, 0, 0};
    assert (!aigw_pgconn_pollitem (NULL, &none) && none.fd == -1);

    //  Bad arguments.
    assert (!aigw_pgconn_new (NULL, &settings, &events));
    assert (!aigw_pgconn_new ("host=x bogus=1", &settings, &events));
    settings.listen = "Bad-Channel";
    assert (!aigw_pgconn_new ("", &settings, &events));
    settings.listen = NULL;
    settings.connect_timeout_ms = 0;
    assert (!aigw_pgconn_new ("", &settings, &events));
    settings.connect_timeout_ms = 2000;
    settings.backoff_max_ms = 100;
    assert (!aigw_pgconn_new ("", &settings, &events));
    settings.backoff_max_ms = 800;

    //  A fresh connection is down, wants processing at once, takes no
    //  statement, and names the database without the password.
    aigw_pgconn_t *c
        = aigw_pgconn_new ("postgresql://u:s3cr3t@127.0.0.1:1/nodb", &settings, &events);
    assert (c);
    assert (aigw_pgconn_state (c) == AIGW_PGCONN_DOWN);
    assert (aigw_pgconn_fd (c) == -1 && aigw_pgconn_events (c) == 0);
    assert (aigw_pgconn_timeout (c, zclock_mono ()) == 0);
    assert (aigw_pgconn_send (c, "SELECT 1", 0, NULL, zclock_mono () + 1000, s_test_done, &seen,
                              zclock_mono ())
            == -1);
    assert (strstr (aigw_pgconn_label (c), "127.0.0.1:1/nodb"));
    assert (!strstr (aigw_pgconn_label (c), "s3cr3t"));

    //  A closed port: each attempt fails, the waits double to the cap
    //  (200, 400, 800, 800 ms), and nothing blocks.
    int longest = s_test_run (c, 2500, &seen.downs, 4);
    if (verbose)
        printf ("\n    closed port: %d failures, longest wait %d ms", seen.downs, longest);
    assert (seen.downs >= 4 && seen.ups == 0 && seen.done == 0);
    assert (longest > 700 && longest <= 800);
    assert (aigw_pgconn_state (c) == AIGW_PGCONN_DOWN);
    int timeout = aigw_pgconn_timeout (c, zclock_mono ());
    assert (timeout > 0 && timeout <= 800);
    //  _connect tries at once, whatever the backoff.
    int downs = seen.downs;
    int rc = aigw_pgconn_connect (c, zclock_mono ());
    assert (rc == -1 || aigw_pgconn_state (c) == AIGW_PGCONN_CONNECTING);
    s_test_run (c, 1000, &seen.downs, downs + 1);
    assert (seen.downs == downs + 1);
    aigw_pgconn_destroy (&c);
    aigw_pgconn_destroy (&c);

    const char *url = getenv ("AIGW_TEST_DATABASE_URL");
    if (!url || !*url)
        url = getenv ("DATABASE_URL");
    if (!url || !*url) {
        //  Label pg: a missing database fails, it does not pass as skipped.
        fprintf (stderr, "pgconn: DATABASE_URL is unset; this selftest needs PostgreSQL "
                         "(tests/run.sh starts one)\n");
        exit (1);
    }
    char channel[AIGW_PGCONN_CHANNEL_MAX + 1];
    snprintf (channel, sizeof channel, "aigw_pgconn_test_%d", (int) getpid ());
    settings.listen = channel;
    settings.statement_timeout_ms = 5000;
    memset (&seen, 0, sizeof seen);
    c = aigw_pgconn_new (url, &settings, &events);
    assert (c);
    s_test_run (c, 5000, &seen.ups, 1);
    assert (seen.ups == 1 && aigw_pgconn_state (c) == AIGW_PGCONN_IDLE);
    assert (aigw_pgconn_timeout (c, zclock_mono ()) == -1);

    //  A statement with parameters; a second one waits its turn.
    const char *params[] = {"41", NULL};
    assert (aigw_pgconn_send (c,
                              "SELECT $1::int + 1, $2::text IS NULL, current_setting"
                              " ('statement_timeout')",
                              2, params, zclock_mono () + 5000, s_test_done, &seen, zclock_mono ())
            == 0);
    assert (aigw_pgconn_state (c) == AIGW_PGCONN_BUSY);
    assert (aigw_pgconn_send (c, "SELECT 1", 0, NULL, zclock_mono () + 5000, s_test_done, &seen,
                              zclock_mono ())
            == -1);
    s_test_run (c, 5000, &seen.done, 1);
    assert (seen.done == 1 && seen.status == AIGW_PGCONN_OK);
    assert (PQresultStatus (seen.result) == PGRES_TUPLES_OK);
    assert (streq (PQgetvalue (seen.result, 0, 0), "42"));
    assert (streq (PQgetvalue (seen.result, 0, 1), "t"));
    assert (streq (PQgetvalue (seen.result, 0, 2), "5s"));
    assert (aigw_pgconn_state (c) == AIGW_PGCONN_IDLE);

    //  An SQL error answers OK with the error; the connection stays.
    assert (aigw_pgconn_send (c, "SELECT 1 / 0", 0, NULL, zclock_mono () + 5000, s_test_done, &seen,
                              zclock_mono ())
            == 0);
    s_test_run (c, 5000, &seen.done, 2);
    assert (seen.status == AIGW_PGCONN_OK);
    assert (PQresultStatus (seen.result) == PGRES_FATAL_ERROR);
    assert (aigw_pgconn_state (c) == AIGW_PGCONN_IDLE && seen.downs == 0);

    //  A NOTIFY on the channel reaches the owner with its payload.
    PGconn *admin = PQconnectdb (url);
    assert (PQstatus (admin) == CONNECTION_OK);
    char sql[160];
    snprintf (sql, sizeof sql, "NOTIFY %s, 'hello'", channel);
    PQclear (PQexec (admin, sql));
    s_test_run (c, 3000, &seen.notifies, 1);
    assert (seen.notifies == 1 && streq (seen.payload, "hello"));

    //  A statement past its deadline: TIMEOUT, the connection goes and
    //  comes back after the backoff.
    assert (aigw_pgconn_send (c, "SELECT pg_sleep (2)", 0, NULL, zclock_mono () + 300, s_test_done,
                              &seen, zclock_mono ())
            == 0);
    s_test_run (c, 3000, &seen.done, 3);
    assert (seen.done == 3 && seen.status == AIGW_PGCONN_TIMEOUT && !seen.result);
    assert (seen.downs == 1 && aigw_pgconn_state (c) == AIGW_PGCONN_DOWN);
    timeout = aigw_pgconn_timeout (c, zclock_mono ());
    assert (timeout > 0 && timeout <= 200);
    s_test_run (c, 5000, &seen.ups, 2);
    assert (seen.ups == 2);

    //  The backend is killed: down, then up again on a new backend.
    assert (aigw_pgconn_send (c, "SELECT pg_backend_pid ()", 0, NULL, zclock_mono () + 5000,
                              s_test_done, &seen, zclock_mono ())
            == 0);
    s_test_run (c, 5000, &seen.done, 4);
    assert (seen.status == AIGW_PGCONN_OK);
    snprintf (sql, sizeof sql, "SELECT pg_terminate_backend (%s)", PQgetvalue (seen.result, 0, 0));
    PQclear (PQexec (admin, sql));
    s_test_run (c, 5000, &seen.ups, 3);
    assert (seen.downs == 2 && seen.ups == 3);

    //  COPY: rows into a temporary table and an INSERT from it, one
    //  transaction; many megabytes, so the rows go out in pieces as the
    //  socket takes them.
    size_t rows = 200000;
    char *copy = malloc (rows * 32);
    assert (copy);
    size_t copy_len = 0;
    for (size_t i = 0; i < rows; i++)
        copy_len += (size_t) sprintf (copy + copy_len, "%zu\trow %zu with\\ttab\n", i, i);
    const char *copy_sql = "CREATE TEMP TABLE IF NOT EXISTS pgconn_copy (n int, t text);"
                           "CREATE TEMP TABLE IF NOT EXISTS pgconn_staging (n int, t text)"
                           " ON COMMIT DELETE ROWS;"
                           "COPY pgconn_staging FROM STDIN;"
                           "INSERT INTO pgconn_copy SELECT * FROM pgconn_staging";
    int done_before = seen.done;
    assert (aigw_pgconn_copy (c, copy_sql, copy, copy_len, zclock_mono () + 20000, s_test_done,
                              &seen, zclock_mono ())
            == 0);
    s_test_run (c, 20000, &seen.done, done_before + 1);
    assert (seen.status == AIGW_PGCONN_OK);
    assert (PQresultStatus (seen.result) == PGRES_COMMAND_OK);
    assert (atol (PQcmdTuples (seen.result)) == (long) rows);
    //  Bad rows: the error answers, nothing of the batch stays, the
    //  connection goes on.
    const char *bad = "1\tgood\nnot a number\tbad\n";
    assert (aigw_pgconn_copy (c, copy_sql, bad, strlen (bad), zclock_mono () + 5000, s_test_done,
                              &seen, zclock_mono ())
            == 0);
    s_test_run (c, 5000, &seen.done, done_before + 2);
    assert (seen.status == AIGW_PGCONN_OK && PQresultStatus (seen.result) == PGRES_FATAL_ERROR);
    assert (aigw_pgconn_state (c) == AIGW_PGCONN_IDLE);
    assert (aigw_pgconn_send (c, "SELECT count (*), count (DISTINCT n) FROM pgconn_copy", 0, NULL,
                              zclock_mono () + 5000, s_test_done, &seen, zclock_mono ())
            == 0);
    s_test_run (c, 5000, &seen.done, done_before + 3);
    assert (PQresultStatus (seen.result) == PGRES_TUPLES_OK);
    assert (atol (PQgetvalue (seen.result, 0, 0)) == (long) rows);
    assert (atol (PQgetvalue (seen.result, 0, 1)) == (long) rows);
    //  A COPY past its deadline drops the connection, which comes back.
    int ups = seen.ups;
    assert (aigw_pgconn_copy (c, "SELECT pg_sleep (2); COPY pgconn_staging FROM STDIN", copy,
                              copy_len, zclock_mono () + 300, s_test_done, &seen, zclock_mono ())
            == 0);
    s_test_run (c, 3000, &seen.done, done_before + 4);
    assert (seen.status == AIGW_PGCONN_TIMEOUT);
    s_test_run (c, 5000, &seen.ups, ups + 1);
    assert (aigw_pgconn_state (c) == AIGW_PGCONN_IDLE);
    free (copy);

    //  Destroy cancels a running statement.
    assert (aigw_pgconn_send (c, "SELECT pg_sleep (1)", 0, NULL, zclock_mono () + 5000, s_test_done,
                              &seen, zclock_mono ())
            == 0);
    aigw_pgconn_destroy (&c);
    assert (seen.status == AIGW_PGCONN_CANCELLED);
    PQclear (seen.result);
    PQfinish (admin);
    aigw_log_set_level (level);
}
