/*  aigw_admin_db: asynchronous libpq connection pool for one actor. */
#include "aigw_admin_db.h"
#include "aigw_log.h"
#include "aigw_stage.h"

//  What a connection is doing.
typedef enum {
    S_DOWN,                     //  closed; reopened at retry_at
    S_CONNECTING,               //  PQconnectPoll in progress
    S_SETUP,                    //  running the session set-up statement
    S_IDLE,                     //  open, waiting for a statement
    S_BUSY                      //  running a caller's statement
} s_state_t;

//  One statement, waiting or running.
typedef struct _s_query_t {
    char *sql;                  //  statement text (a constant of the caller's, copied)
    int nparams;                //  entries used in params
    char *params[AIGW_ADMIN_DB_MAX_PARAMS]; //  text parameters, NULL = SQL NULL
    int64_t deadline;           //  Unix ms: fail past it
    aigw_admin_db_fn *fn;       //  completion callback
    void *arg;                  //  its argument
    struct _s_query_t *next;    //  next in the FIFO
} s_query_t;

//  One connection of the pool.
typedef struct {
    aigw_admin_db_t *owner;     //  the pool
    int index;                  //  position in owner->conns, for logs
    PGconn *conn;               //  libpq handle, NULL while down
    s_state_t state;            //  what it is doing
    PostgresPollingStatusType polling; //  CONNECTING: what PQconnectPoll wants
    bool flushing;              //  output still queued in libpq
    int64_t deadline;           //  Unix ms: connect, set-up or statement deadline
    int64_t retry_at;           //  DOWN: when to reopen
    int backoff_ms;             //  next reopen delay after a failure
    s_query_t *query;           //  BUSY: the statement running
    PGresult *result;           //  the statement's last result so far
    int item;                   //  index in the last _pollitems, -1 = none
} s_conn_t;

struct _aigw_admin_db_t {
    char *conninfo;             //  libpq connection string (may hold a password)
    char statement_timeout[24]; //  statement_timeout value, in ms, as text
    int64_t connect_timeout_ms; //  bound on one connection attempt
    int64_t statement_timeout_ms; //  the server's statement_timeout
    int queue_max;              //  most statements waiting
    s_conn_t *conns;            //  the pool
    int pool_size;              //  entries in conns
    s_query_t *head;            //  FIFO of waiting statements: oldest
    s_query_t *tail;            //  newest
    int queued;                 //  statements waiting
    int64_t kicked_at;          //  last prompt attempt while all were down
};

static void s_conn_fail (s_conn_t *c, const char *why, aigw_admin_db_status_t status);
static void s_dispatch (aigw_admin_db_t *self);

static void
s_query_destroy (s_query_t **self_p)
{
    s_query_t *q = *self_p;
    if (!q)
        return;
    free (q->sql);
    //  A parameter may hold a secret (a model's upstream api_key): wiped.
    for (int i = 0; i < q->nparams; i++) {
        if (q->params[i])
            explicit_bzero (q->params[i], strlen (q->params[i]));
        free (q->params[i]);
    }
    free (q);
    *self_p = NULL;
}

//  Run Q's callback with STATUS and RESULT, then free Q. The result stays
//  the caller's to clear.
static void
s_query_finish (s_query_t *q, PGresult *result, aigw_admin_db_status_t status)
{
    q->fn (q->arg, result, status);
    s_query_destroy (&q);
}

static bool
s_live (const s_conn_t *c)
{
    return c->state != S_DOWN;
}

static bool
s_any_live (aigw_admin_db_t *self)
{
    for (int i = 0; i < self->pool_size; i++)
        if (s_live (&self->conns[i]))
            return true;
    return false;
}

//  Fail every waiting statement with STATUS.
static void
s_fail_queue (aigw_admin_db_t *self, aigw_admin_db_status_t status)
{
    while (self->head) {
        s_query_t *q = self->head;
        self->head = q->next;
        self->queued--;
        s_query_finish (q, NULL, status);
    }
    self->tail = NULL;
}

//  The first line of libpq's message for C, in BUF.
static const char *
s_conn_error (s_conn_t *c, char *buf, size_t size)
{
    snprintf (buf, size, "%s", c->conn ? PQerrorMessage (c->conn) : "out of memory");
    buf[strcspn (buf, "\n")] = 0;
    return buf;
}

//  Send the session set-up: the statement timeout, as a parameter.
static void
s_conn_setup (s_conn_t *c)
{
    aigw_admin_db_t *self = c->owner;
    const char *params[] = {self->statement_timeout};
    PQsetnonblocking (c->conn, 1);
    if (!PQsendQueryParams (c->conn, "SELECT set_config ('statement_timeout', $1, false)", 1,
                            NULL, params, NULL, NULL, 0)) {
        s_conn_fail (c, "set-up failed", AIGW_ADMIN_DB_UNAVAILABLE);
        return;
    }
    int flushed = PQflush (c->conn);
    if (flushed < 0) {
        s_conn_fail (c, "set-up failed", AIGW_ADMIN_DB_UNAVAILABLE);
        return;
    }
    c->flushing = flushed == 1;
    c->state = S_SETUP;
    c->deadline = aigw_now_ms () + self->connect_timeout_ms;
}

//  libpq notices (and server messages outside a statement) go to our
//  log, not straight to stderr.
static void
s_on_notice (void *arg, const char *message)
{
    aigw_debug ("admin database connection %d: %.*s", ((s_conn_t *) arg)->index,
                (int) strcspn (message, "\n"), message);
}

//  Start opening C.
static void
s_conn_start (s_conn_t *c)
{
    aigw_admin_db_t *self = c->owner;
    //  Our settings come after the expanded connection string, so they
    //  win over the same keywords in it.
    const char *keys[] = {"dbname", "client_encoding", "application_name", NULL};
    const char *values[] = {self->conninfo, "UTF8", "aigw-admin", NULL};
    c->conn = PQconnectStartParams (keys, values, 1);
    c->state = S_CONNECTING;
    c->polling = PGRES_POLLING_WRITING;
    c->flushing = false;
    c->deadline = aigw_now_ms () + self->connect_timeout_ms;
    if (!c->conn || PQstatus (c->conn) == CONNECTION_BAD)
        s_conn_fail (c, "cannot connect", AIGW_ADMIN_DB_UNAVAILABLE);
    else
        PQsetNoticeProcessor (c->conn, s_on_notice, c);
}

//  Close C after a failure (WHY, for the log), fail its statement with
//  STATUS, and schedule a reopen with backoff. When no connection is left
//  open or opening, every waiting statement fails too.
static void
s_conn_fail (s_conn_t *c, const char *why, aigw_admin_db_status_t status)
{
    aigw_admin_db_t *self = c->owner;
    char detail[256];
    s_conn_error (c, detail, sizeof detail);
    bool was_open = c->state == S_IDLE || c->state == S_BUSY;
    if (was_open || c->backoff_ms == AIGW_ADMIN_DB_BACKOFF_MIN_MS)
        aigw_warn ("admin database connection %d: %s: %s", c->index, why, detail);
    else
        aigw_debug ("admin database connection %d: %s: %s", c->index, why, detail);
    if (c->result)
        PQclear (c->result);
    c->result = NULL;
    if (c->conn)
        PQfinish (c->conn);
    c->conn = NULL;
    s_query_t *q = c->query;
    c->query = NULL;
    int64_t now = aigw_now_ms ();
    if (was_open && status == AIGW_ADMIN_DB_TIMEOUT)
        c->retry_at = now;      //  the server may be fine: a slow statement
    else if (was_open)
        c->retry_at = now + AIGW_ADMIN_DB_BACKOFF_MIN_MS / 4;
    else {
        c->retry_at = now + c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > AIGW_ADMIN_DB_BACKOFF_MAX_MS
                            ? AIGW_ADMIN_DB_BACKOFF_MAX_MS
                            : c->backoff_ms * 2;
    }
    c->state = S_DOWN;
    c->flushing = false;
    if (q)
        s_query_finish (q, NULL, status);
    if (!s_any_live (self))
        s_fail_queue (self, AIGW_ADMIN_DB_UNAVAILABLE);
}

//  Start statement Q on idle connection C. Returns 0, or -1 when the
//  connection broke (Q is then untouched).
static int
s_conn_send (s_conn_t *c, s_query_t *q)
{
    aigw_admin_db_t *self = c->owner;
    if (!PQsendQueryParams (c->conn, q->sql, q->nparams, NULL,
                            (const char *const *) q->params, NULL, NULL, 0))
        return -1;
    int flushed = PQflush (c->conn);
    if (flushed < 0)
        return -1;
    c->flushing = flushed == 1;
    c->state = S_BUSY;
    c->query = q;
    int64_t limit = aigw_now_ms () + self->statement_timeout_ms + AIGW_ADMIN_DB_GRACE_MS;
    c->deadline = q->deadline < limit ? q->deadline : limit;
    return 0;
}

//  Hand waiting statements to idle connections, oldest first.
static void
s_dispatch (aigw_admin_db_t *self)
{
    for (int i = 0; i < self->pool_size && self->head; i++) {
        s_conn_t *c = &self->conns[i];
        if (c->state != S_IDLE)
            continue;
        s_query_t *q = self->head;
        self->head = q->next;
        if (!self->head)
            self->tail = NULL;
        self->queued--;
        q->next = NULL;
        if (s_conn_send (c, q)) {
            //  Back to the front: another connection may take it.
            q->next = self->head;
            self->head = q;
            if (!self->tail)
                self->tail = q;
            self->queued++;
            s_conn_fail (c, "connection lost", AIGW_ADMIN_DB_UNAVAILABLE);
        }
    }
}

//  The statement (or set-up) on C has all its results: complete it.
static void
s_conn_complete (s_conn_t *c)
{
    PGresult *result = c->result;
    c->result = NULL;
    if (PQstatus (c->conn) == CONNECTION_BAD) {
        if (result)
            PQclear (result);
        s_conn_fail (c, "connection lost", AIGW_ADMIN_DB_UNAVAILABLE);
        return;
    }
    if (c->state == S_SETUP) {
        bool ok = result && PQresultStatus (result) == PGRES_TUPLES_OK;
        if (result)
            PQclear (result);
        if (!ok) {
            s_conn_fail (c, "set-up failed", AIGW_ADMIN_DB_UNAVAILABLE);
            return;
        }
        c->state = S_IDLE;
        c->backoff_ms = AIGW_ADMIN_DB_BACKOFF_MIN_MS;
        aigw_debug ("admin database connection %d ready", c->index);
        s_dispatch (c->owner);
        return;
    }
    s_query_t *q = c->query;
    c->query = NULL;
    c->state = S_IDLE;
    s_query_finish (q, result, AIGW_ADMIN_DB_OK);
    if (result)
        PQclear (result);
    s_dispatch (c->owner);
}

//  Read what the server sent on C and complete its statement when whole.
static void
s_conn_read (s_conn_t *c)
{
    if (!PQconsumeInput (c->conn)) {
        s_conn_fail (c, "connection lost", AIGW_ADMIN_DB_UNAVAILABLE);
        return;
    }
    PGnotify *notify;
    while ((notify = PQnotifies (c->conn)))
        PQfreemem (notify);
    if (c->state == S_IDLE) {
        if (PQstatus (c->conn) == CONNECTION_BAD)
            s_conn_fail (c, "connection lost", AIGW_ADMIN_DB_UNAVAILABLE);
        return;
    }
    while (!PQisBusy (c->conn)) {
        PGresult *result = PQgetResult (c->conn);
        if (!result) {
            s_conn_complete (c);
            return;
        }
        if (c->result)
            PQclear (c->result);
        c->result = result;
    }
    if (PQstatus (c->conn) == CONNECTION_BAD)
        s_conn_fail (c, "connection lost", AIGW_ADMIN_DB_UNAVAILABLE);
}

//  Act on C's socket readiness REVENTS.
static void
s_conn_io (s_conn_t *c, short revents)
{
    if (c->state == S_CONNECTING) {
        c->polling = PQconnectPoll (c->conn);
        if (c->polling == PGRES_POLLING_FAILED)
            s_conn_fail (c, "cannot connect", AIGW_ADMIN_DB_UNAVAILABLE);
        else if (c->polling == PGRES_POLLING_OK)
            s_conn_setup (c);
        return;
    }
    if (c->flushing && (revents & (ZMQ_POLLOUT | ZMQ_POLLERR))) {
        int flushed = PQflush (c->conn);
        if (flushed < 0) {
            s_conn_fail (c, "connection lost", AIGW_ADMIN_DB_UNAVAILABLE);
            return;
        }
        c->flushing = flushed == 1;
    }
    if (revents & (ZMQ_POLLIN | ZMQ_POLLERR))
        s_conn_read (c);
}

aigw_admin_db_t *
aigw_admin_db_new (const char *conninfo, int pool_size, int64_t connect_timeout_ms,
                   int64_t statement_timeout_ms, int queue_max)
{
    assert (conninfo && pool_size > 0 && connect_timeout_ms > 0
            && statement_timeout_ms > 0 && queue_max > 0);
    aigw_admin_db_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->conninfo = strdup (conninfo);
    self->conns = calloc ((size_t) pool_size, sizeof *self->conns);
    if (!self->conninfo || !self->conns) {
        aigw_admin_db_destroy (&self);
        return NULL;
    }
    self->pool_size = pool_size;
    self->connect_timeout_ms = connect_timeout_ms;
    self->statement_timeout_ms = statement_timeout_ms;
    self->queue_max = queue_max;
    snprintf (self->statement_timeout, sizeof self->statement_timeout, "%lld",
              (long long) statement_timeout_ms);
    for (int i = 0; i < pool_size; i++) {
        s_conn_t *c = &self->conns[i];
        c->owner = self;
        c->index = i;
        c->item = -1;
        c->backoff_ms = AIGW_ADMIN_DB_BACKOFF_MIN_MS;
        s_conn_start (c);
    }
    return self;
}

void
aigw_admin_db_destroy (aigw_admin_db_t **self_p)
{
    aigw_admin_db_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; self->conns && i < self->pool_size; i++) {
        s_conn_t *c = &self->conns[i];
        if (c->result)
            PQclear (c->result);
        if (c->conn)
            PQfinish (c->conn);
        c->conn = NULL;
        c->state = S_DOWN;
        if (c->query) {
            s_query_t *q = c->query;
            c->query = NULL;
            s_query_finish (q, NULL, AIGW_ADMIN_DB_CANCELLED);
        }
    }
    s_fail_queue (self, AIGW_ADMIN_DB_CANCELLED);
    free (self->conns);
    if (self->conninfo) {
        //  It may hold a password.
        memset (self->conninfo, 0, strlen (self->conninfo));
        free (self->conninfo);
    }
    free (self);
    *self_p = NULL;
}

int
aigw_admin_db_query (aigw_admin_db_t *self, const char *sql, int nparams,
                     const char *const *params, int64_t deadline_ms,
                     aigw_admin_db_fn *fn, void *arg)
{
    assert (self && sql && fn && nparams >= 0 && nparams <= AIGW_ADMIN_DB_MAX_PARAMS);
    if (self->queued >= self->queue_max)
        return -1;
    int64_t now = aigw_now_ms ();
    if (!s_any_live (self)) {
        //  Everything is down: one prompt attempt, not one per statement.
        if (now - self->kicked_at < AIGW_ADMIN_DB_KICK_MS)
            return -1;
        self->kicked_at = now;
        s_conn_t *first = &self->conns[0];
        for (int i = 1; i < self->pool_size; i++)
            if (self->conns[i].retry_at < first->retry_at)
                first = &self->conns[i];
        s_conn_start (first);
        if (!s_live (first))
            return -1;
    }
    s_query_t *q = calloc (1, sizeof *q);
    if (!q)
        return -1;
    q->sql = strdup (sql);
    q->nparams = nparams;
    bool ok = q->sql != NULL;
    for (int i = 0; i < nparams; i++)
        if (params[i] && !(q->params[i] = strdup (params[i])))
            ok = false;
    if (!ok) {
        s_query_destroy (&q);
        return -1;
    }
    q->deadline = deadline_ms;
    q->fn = fn;
    q->arg = arg;
    if (self->tail)
        self->tail->next = q;
    else
        self->head = q;
    self->tail = q;
    self->queued++;
    s_dispatch (self);
    return 0;
}

int
aigw_admin_db_pollitems (aigw_admin_db_t *self, zmq_pollitem_t *items, int max)
{
    int count = 0;
    for (int i = 0; i < self->pool_size; i++) {
        s_conn_t *c = &self->conns[i];
        c->item = -1;
        if (c->state == S_DOWN || !c->conn || count == max)
            continue;
        int fd = PQsocket (c->conn);
        if (fd < 0)
            continue;
        short events;
        if (c->state == S_CONNECTING)
            events = c->polling == PGRES_POLLING_READING ? ZMQ_POLLIN : ZMQ_POLLOUT;
        else
            events = ZMQ_POLLIN | (c->flushing ? ZMQ_POLLOUT : 0);
        items[count] = (zmq_pollitem_t) {NULL, fd, events, 0};
        c->item = count++;
    }
    return count;
}

int
aigw_admin_db_timeout (aigw_admin_db_t *self)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < self->pool_size; i++) {
        s_conn_t *c = &self->conns[i];
        int64_t at = c->state == S_DOWN ? c->retry_at
                     : c->state == S_IDLE ? INT64_MAX
                                          : c->deadline;
        if (at < next)
            next = at;
    }
    for (s_query_t *q = self->head; q; q = q->next)
        if (q->deadline < next)
            next = q->deadline;
    if (next == INT64_MAX)
        return -1;
    int64_t wait = next - aigw_now_ms ();
    return wait < 0 ? 0 : wait > INT32_MAX ? INT32_MAX : (int) wait;
}

void
aigw_admin_db_process (aigw_admin_db_t *self, zmq_pollitem_t *items, int count)
{
    //  Socket readiness first: answers that arrived beat their deadlines.
    for (int i = 0; i < self->pool_size; i++) {
        s_conn_t *c = &self->conns[i];
        int item = c->item;
        c->item = -1;
        if (item < 0 || item >= count || c->state == S_DOWN)
            continue;
        if (items[item].revents)
            s_conn_io (c, items[item].revents);
    }
    int64_t now = aigw_now_ms ();
    for (int i = 0; i < self->pool_size; i++) {
        s_conn_t *c = &self->conns[i];
        if (c->state == S_DOWN && now >= c->retry_at)
            s_conn_start (c);
        else if ((c->state == S_CONNECTING || c->state == S_SETUP) && now >= c->deadline)
            s_conn_fail (c, "connection attempt timed out", AIGW_ADMIN_DB_UNAVAILABLE);
        else if (c->state == S_BUSY && now >= c->deadline)
            s_conn_fail (c, "statement deadline passed", AIGW_ADMIN_DB_TIMEOUT);
    }
    //  Statements whose deadline passed while they waited.
    s_query_t **link = &self->head;
    self->tail = NULL;
    while (*link) {
        s_query_t *q = *link;
        if (now >= q->deadline) {
            *link = q->next;
            self->queued--;
            s_query_finish (q, NULL, AIGW_ADMIN_DB_TIMEOUT);
        }
        else {
            self->tail = q;
            link = &q->next;
        }
    }
    s_dispatch (self);
}

int
aigw_admin_db_ready (aigw_admin_db_t *self)
{
    int ready = 0;
    for (int i = 0; i < self->pool_size; i++)
        ready += self->conns[i].state == S_IDLE || self->conns[i].state == S_BUSY;
    return ready;
}

//  Selftest callback: records the status in *ARG.
static void
s_test_done (void *arg, PGresult *result, aigw_admin_db_status_t status)
{
    *(int *) arg = (int) status;
}

void
aigw_admin_db_test (bool verbose)
{
    //  Nothing listens on port 1: statements fail promptly, never hang.
    aigw_admin_db_t *db
        = aigw_admin_db_new ("host=127.0.0.1 port=1 dbname=none", 2, 2000, 1000, 2);
    assert (db);
    int64_t start = aigw_now_ms ();
    int outcome = -1;
    const char *params[] = {"x", NULL};
    int rc = aigw_admin_db_query (db, "SELECT $1, $2", 2, params, start + 5000,
                                  s_test_done, &outcome);
    while (outcome == -1 && aigw_now_ms () - start < 5000) {
        zmq_pollitem_t items[4];
        int count = aigw_admin_db_pollitems (db, items, 4);
        int timeout = aigw_admin_db_timeout (db);
        if (count)
            zmq_poll (items, count, timeout < 0 || timeout > 100 ? 100 : timeout);
        else
            zclock_sleep (10);
        aigw_admin_db_process (db, items, count);
    }
    //  Either the attempt failed before the query was taken (rc -1), or
    //  the statement failed as unavailable.
    assert (rc == -1 || outcome == AIGW_ADMIN_DB_UNAVAILABLE);
    assert (aigw_now_ms () - start < 3000);
    assert (aigw_admin_db_ready (db) == 0);
    //  A statement taken while a connection is opening is cancelled by
    //  destroy.
    aigw_admin_db_destroy (&db);
    aigw_admin_db_destroy (&db);
    db = aigw_admin_db_new ("host=127.0.0.1 port=1 dbname=none", 1, 2000, 1000, 1);
    outcome = -1;
    rc = aigw_admin_db_query (db, "SELECT 1", 0, NULL, aigw_now_ms () + 5000, s_test_done,
                              &outcome);
    if (rc == 0) {
        //  The queue holds one: a second is refused.
        int other = -1;
        assert (aigw_admin_db_query (db, "SELECT 1", 0, NULL, aigw_now_ms () + 5000,
                                     s_test_done, &other)
                == -1);
        aigw_admin_db_destroy (&db);
        assert (outcome == AIGW_ADMIN_DB_CANCELLED || outcome == AIGW_ADMIN_DB_UNAVAILABLE);
    }
    aigw_admin_db_destroy (&db);
    if (verbose)
        printf ("admin_db: ok\n");
}
