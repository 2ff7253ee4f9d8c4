/*  aigw_admin_db: a pool of aigw_pgconn connections for one actor, with a
    bounded FIFO of statements waiting for a free one. */
#include "aigw_admin_db.h"
#include "aigw_log.h"
#include "aigw_pgconn.h"
#include "aigw_stage.h"

//  Longest "admin database connection N" name.
#define S_NAME_MAX 48

//  One statement, waiting or running.
typedef struct _s_query_t {
    char *sql;                               //  statement text (a constant of the caller's, copied)
    int nparams;                             //  entries used in params
    char *params[AIGW_ADMIN_DB_MAX_PARAMS];  //  text parameters, NULL = SQL NULL
    int64_t deadline;                        //  Unix ms: fail past it
    aigw_admin_db_fn *fn;                    //  completion callback
    void *arg;                               //  its argument
    struct _s_query_t *next;                 //  next in the FIFO
} s_query_t;

//  One connection of the pool.
typedef struct {
    aigw_admin_db_t *owner;  //  the pool
    aigw_pgconn_t *conn;     //  the connection
    s_query_t *query;        //  the statement running on it, or NULL
    int item;                //  index in the last _pollitems, -1 = none
} s_conn_t;

struct _aigw_admin_db_t {
    int64_t statement_timeout_ms;  //  the server's statement_timeout
    int queue_max;                 //  most statements waiting
    s_conn_t *conns;               //  the pool
    int pool_size;                 //  entries in conns
    s_query_t *head;               //  FIFO of waiting statements: oldest
    s_query_t *tail;               //  newest
    int queued;                    //  statements waiting
    int64_t kicked_at;             //  last prompt attempt while all were down
    int kick_next;                 //  the connection the next prompt attempt opens
    bool destroying;               //  in _destroy: start nothing new
};

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

//  True while C is open or opening.
static bool
s_live (const s_conn_t *c)
{
    return aigw_pgconn_state (c->conn) != AIGW_PGCONN_DOWN;
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

//  A connection's statement ended: answer it, then start the next one.
static void
s_conn_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    s_conn_t *c = arg;
    s_query_t *q = c->query;
    c->query = NULL;
    aigw_admin_db_status_t outcome = status == AIGW_PGCONN_OK          ? AIGW_ADMIN_DB_OK
                                     : status == AIGW_PGCONN_TIMEOUT   ? AIGW_ADMIN_DB_TIMEOUT
                                     : status == AIGW_PGCONN_CANCELLED ? AIGW_ADMIN_DB_CANCELLED
                                                                       : AIGW_ADMIN_DB_UNAVAILABLE;
    s_query_finish (q, result, outcome);
    PQclear (result);
    if (!c->owner->destroying)
        s_dispatch (c->owner);
}

//  A connection is up: give it work.
static void
s_conn_up (void *arg)
{
    s_dispatch (((s_conn_t *) arg)->owner);
}

//  A connection went (after its statement failed): when none is left open
//  or opening, every waiting statement fails too.
static void
s_conn_down (void *arg, const char *why)
{
    aigw_admin_db_t *self = ((s_conn_t *) arg)->owner;
    if (!s_any_live (self))
        s_fail_queue (self, AIGW_ADMIN_DB_UNAVAILABLE);
}

//  Hand waiting statements to idle connections, oldest first.
static void
s_dispatch (aigw_admin_db_t *self)
{
    for (int i = 0; i < self->pool_size && self->head; i++) {
        s_conn_t *c = &self->conns[i];
        if (aigw_pgconn_state (c->conn) != AIGW_PGCONN_IDLE)
            continue;
        s_query_t *q = self->head;
        self->head = q->next;
        if (!self->head)
            self->tail = NULL;
        self->queued--;
        q->next = NULL;
        int64_t now = aigw_now_ms ();
        int64_t limit = now + self->statement_timeout_ms + AIGW_ADMIN_DB_GRACE_MS;
        c->query = q;
        if (aigw_pgconn_send (c->conn, q->sql, q->nparams, (const char *const *) q->params,
                              q->deadline < limit ? q->deadline : limit, s_conn_done, c, now)) {
            //  The connection broke (and was dropped): back to the front,
            //  another connection may take it.
            c->query = NULL;
            q->next = self->head;
            self->head = q;
            if (!self->tail)
                self->tail = q;
            self->queued++;
            if (!s_any_live (self))
                s_fail_queue (self, AIGW_ADMIN_DB_UNAVAILABLE);
        }
    }
}

aigw_admin_db_t *
aigw_admin_db_new (const char *conninfo, int pool_size, int64_t connect_timeout_ms,
                   int64_t statement_timeout_ms, int queue_max)
{
    assert (conninfo && pool_size > 0 && connect_timeout_ms > 0 && statement_timeout_ms > 0
            && queue_max > 0);
    aigw_admin_db_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->conns = calloc ((size_t) pool_size, sizeof *self->conns);
    if (!self->conns) {
        aigw_admin_db_destroy (&self);
        return NULL;
    }
    self->pool_size = pool_size;
    self->statement_timeout_ms = statement_timeout_ms;
    self->queue_max = queue_max;
    char name[S_NAME_MAX];
    aigw_pgconn_settings_t settings = {.name = name,
                                       .application_name = "aigw-admin",
                                       .connect_timeout_ms = connect_timeout_ms,
                                       .statement_timeout_ms = statement_timeout_ms,
                                       .backoff_min_ms = AIGW_ADMIN_DB_BACKOFF_MIN_MS,
                                       .backoff_max_ms = AIGW_ADMIN_DB_BACKOFF_MAX_MS};
    for (int i = 0; i < pool_size; i++) {
        s_conn_t *c = &self->conns[i];
        snprintf (name, sizeof name, "admin database connection %d", i);
        aigw_pgconn_events_t events = {s_conn_up, s_conn_down, NULL, c};
        c->owner = self;
        c->item = -1;
        c->conn = aigw_pgconn_new (conninfo, &settings, &events);
        if (!c->conn) {
            aigw_admin_db_destroy (&self);
            return NULL;
        }
    }
    int64_t now = aigw_now_ms ();
    for (int i = 0; i < pool_size; i++)
        aigw_pgconn_connect (self->conns[i].conn, now);
    return self;
}

void
aigw_admin_db_destroy (aigw_admin_db_t **self_p)
{
    aigw_admin_db_t *self = *self_p;
    if (!self)
        return;
    self->destroying = true;
    //  A running statement is answered CANCELLED by its connection.
    for (int i = 0; self->conns && i < self->pool_size; i++)
        aigw_pgconn_destroy (&self->conns[i].conn);
    s_fail_queue (self, AIGW_ADMIN_DB_CANCELLED);
    free (self->conns);
    free (self);
    *self_p = NULL;
}

int
aigw_admin_db_query (aigw_admin_db_t *self, const char *sql, int nparams, const char *const *params,
                     int64_t deadline_ms, aigw_admin_db_fn *fn, void *arg)
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
        s_conn_t *first = &self->conns[self->kick_next++ % self->pool_size];
        if (aigw_pgconn_connect (first->conn, now))
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
        if (count < max && aigw_pgconn_pollitem (c->conn, &items[count]))
            c->item = count++;
    }
    return count;
}

int
aigw_admin_db_timeout (aigw_admin_db_t *self)
{
    int64_t now = aigw_now_ms ();
    int64_t next = INT64_MAX;
    for (int i = 0; i < self->pool_size; i++) {
        int wait = aigw_pgconn_timeout (self->conns[i].conn, now);
        if (wait >= 0 && now + wait < next)
            next = now + wait;
    }
    for (s_query_t *q = self->head; q; q = q->next)
        if (q->deadline < next)
            next = q->deadline;
    if (next == INT64_MAX)
        return -1;
    int64_t wait = next - now;
    return wait < 0 ? 0 : wait > INT32_MAX ? INT32_MAX : (int) wait;
}

void
aigw_admin_db_process (aigw_admin_db_t *self, zmq_pollitem_t *items, int count)
{
    int64_t now = aigw_now_ms ();
    for (int i = 0; i < self->pool_size; i++) {
        s_conn_t *c = &self->conns[i];
        int item = c->item;
        c->item = -1;
        short revents = item >= 0 && item < count ? items[item].revents : 0;
        aigw_pgconn_process (c->conn, revents, now);
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
    for (int i = 0; i < self->pool_size; i++) {
        aigw_pgconn_state_t state = aigw_pgconn_state (self->conns[i].conn);
        ready += state == AIGW_PGCONN_IDLE || state == AIGW_PGCONN_BUSY;
    }
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
    aigw_admin_db_t *db = aigw_admin_db_new ("host=127.0.0.1 port=1 dbname=none", 2, 2000, 1000, 2);
    assert (db);
    int64_t start = aigw_now_ms ();
    int outcome = -1;
    const char *params[] = {"x", NULL};
    int rc
        = aigw_admin_db_query (db, "SELECT $1, $2", 2, params, start + 5000, s_test_done, &outcome);
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
        assert (aigw_admin_db_query (db, "SELECT 1", 0, NULL, aigw_now_ms () + 5000, s_test_done,
                                     &other)
                == -1);
        aigw_admin_db_destroy (&db);
        assert (outcome == AIGW_ADMIN_DB_CANCELLED || outcome == AIGW_ADMIN_DB_UNAVAILABLE);
    }
    aigw_admin_db_destroy (&db);
    if (verbose)
        printf ("admin_db: ok\n");
}
