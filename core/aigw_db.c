/*  aigw_db: PostgreSQL connections and schema migrations.

    Every wait here has a deadline: the connection is opened with
    PQconnectStartParams and polled, and a statement is sent with
    PQsendQueryParams and its answer polled, so a silent server or a dead
    network costs at most the configured timeout. libpq's own connect_timeout
    (whole seconds) is set too, as a backstop.

    A query that times out on the client is not cancelled: PQcancel opens a
    new blocking connection with no timeout of its own (libpq 15), which is
    the wait we are avoiding. The server stops it anyway at statement_timeout,
    which the client deadline always exceeds (AIGW_DB_CLIENT_GRACE_MS). */
#include "aigw_db.h"
#include "aigw_log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  What the server shows in pg_stat_activity for aigw's sessions.
#define AIGW_DB_APPLICATION_NAME "aigw"
//  libpq treats a connect_timeout of 1 as 2: its smallest.
#define AIGW_DB_LIBPQ_TIMEOUT_MIN_S 2
//  How often a migrator asks for the advisory lock while another holds it.
#define AIGW_DB_MIGRATE_LOCK_POLL_MS 50
//  What replaces a password in an error message.
#define AIGW_DB_MASK "***"
//  Digits of an int64 as text, with sign and NUL.
#define AIGW_DB_INT_TEXT_MAX 24

//  The bookkeeping table: one row per applied migration.
static const char *s_sql_migrations_table = "CREATE TABLE IF NOT EXISTS aigw_migrations ("
                                            " version integer PRIMARY KEY,"
                                            " name text NOT NULL,"
                                            " sha256 text NOT NULL,"
                                            " applied_at timestamptz NOT NULL DEFAULT now ())";

//  --------------------------------------------------------------------------
//  Small helpers

//  Milliseconds on the monotonic clock.
static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Writes the formatted message into ERR (may be NULL). Always returns -1.
static int s_err (char *err, size_t err_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  (Definition; the contract is on the declaration above.)
static int
s_err (char *err, size_t err_size, const char *format, ...)
{
    if (!err || err_size == 0)
        return -1;
    va_list args;
    va_start (args, format);
    vsnprintf (err, err_size, format, args);
    va_end (args);
    return -1;
}

//  Makes a libpq or server message one line: newlines and tabs become
//  spaces, runs of spaces shrink to one, trailing space goes.
static void
s_one_line (char *text)
{
    size_t out = 0;
    for (size_t in = 0; text[in]; in++) {
        char c = text[in];
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        if (c == ' ' && (out == 0 || text[out - 1] == ' '))
            continue;
        text[out++] = c;
    }
    while (out > 0 && text[out - 1] == ' ')
        out--;
    text[out] = 0;
}

//  Replaces every occurrence of NEEDLE (LEN bytes, LEN > 0) in TEXT, a
//  string in a buffer of SIZE bytes, with AIGW_DB_MASK. Cuts the result to
//  fit rather than leave a piece of the needle.
static void
s_mask (char *text, size_t size, const char *needle, size_t len)
{
    if (len == 0 || size == 0 || !strstr (text, needle))
        return;
    char *out = malloc (size);
    if (!out) {
        text[0] = 0;  //  cannot mask: say nothing rather than leak
        return;
    }
    size_t used = 0;
    const char *p = text;
    const char *hit;
    while ((hit = strstr (p, needle))) {
        size_t keep = (size_t) (hit - p);
        if (used + keep + strlen (AIGW_DB_MASK) >= size)
            break;
        memcpy (out + used, p, keep);
        used += keep;
        memcpy (out + used, AIGW_DB_MASK, strlen (AIGW_DB_MASK));
        used += strlen (AIGW_DB_MASK);
        p = hit + len;
    }
    if (!strstr (p, needle)) {
        size_t rest = strlen (p);
        if (used + rest >= size)
            rest = size - used - 1;
        memcpy (out + used, p, rest);
        used += rest;
    }
    out[used] = 0;
    memcpy (text, out, used + 1);
    free (out);
}

//  Replaces in TEXT (buffer of SIZE) the inside of every double-quoted
//  segment with AIGW_DB_MASK: libpq quotes pieces of a connection string it
//  cannot parse, and a piece may be part of a password.
static void
s_mask_quoted (char *text, size_t size)
{
    char *out = malloc (size);
    if (!out) {
        text[0] = 0;  //  cannot mask: say nothing rather than leak
        return;
    }
    size_t used = 0;
    const char *p = text;
    while (*p && used + 1 < size) {
        const char *close = *p == '"' ? strchr (p + 1, '"') : NULL;
        if (close) {
            int len = snprintf (out + used, size - used, "\"%s\"", AIGW_DB_MASK);
            if (len < 0 || (size_t) len >= size - used)
                break;
            used += (size_t) len;
            p = close + 1;
        }
        else
            out[used++] = *p++;
    }
    out[used] = 0;
    memcpy (text, out, used + 1);
    free (out);
}

//  Masks in TEXT (buffer of SIZE) every password that URL (a libpq URI or
//  key=value connection string) carries: the parsed value, the raw URI
//  userinfo password, and every raw password= value. When URL holds a
//  password but does not parse, quoted pieces go too.
static void
s_redact (char *text, size_t size, const char *url)
{
    if (!url || !text || size == 0)
        return;
    bool has_password = false;
    PQconninfoOption *options = PQconninfoParse (url, NULL);
    for (PQconninfoOption *o = options; o && o->keyword; o++)
        if (strcmp (o->keyword, "password") == 0 && o->val && *o->val) {
            s_mask (text, size, o->val, strlen (o->val));
            has_password = true;
        }
    //  URI: scheme://user:password@host... (libpq ends userinfo at '@' and
    //  stops looking at the first '/').
    const char *scheme = strstr (url, "://");
    if (scheme
        && (strncmp (url, "postgresql://", 13) == 0 || strncmp (url, "postgres://", 11) == 0)) {
        const char *authority = scheme + 3;
        size_t span = strcspn (authority, "@/");
        if (authority[span] == '@') {
            const char *colon = memchr (authority, ':', span);
            if (colon && (size_t) (authority + span - colon - 1) > 0) {
                size_t len = (size_t) (authority + span - colon - 1);
                char *password = strndup (colon + 1, len);
                if (password) {
                    s_mask (text, size, password, len);
                    free (password);
                }
                has_password = true;
            }
        }
    }
    //  password=VALUE, in a query string or key=value form.
    for (const char *p = strstr (url, "password"); p; p = strstr (p + 1, "password")) {
        const char *v = p + strlen ("password");
        while (*v == ' ')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ')
            v++;
        size_t len = *v == '\'' ? strcspn (v + 1, "'") : strcspn (v, " &\t\n");
        if (*v == '\'')
            v++;
        if (len == 0)
            continue;
        char *password = strndup (v, len);
        if (password) {
            s_mask (text, size, password, len);
            free (password);
        }
        has_password = true;
    }
    if (has_password && !options)
        s_mask_quoted (text, size);
    PQconninfoFree (options);
}

//  Waits until CONN's socket is ready for EVENTS (POLLIN, POLLOUT) or
//  DEADLINE (monotonic ms) passes. Returns the ready events, 0 on timeout,
//  or -1 if the socket is gone or poll fails.
static int
s_wait (PGconn *conn, short events, int64_t deadline)
{
    int fd = PQsocket (conn);
    if (fd < 0)
        return -1;
    for (;;) {
        int64_t left = deadline - s_now_ms ();
        if (left <= 0)
            return 0;
        struct pollfd item = {.fd = fd, .events = events};
        int rc = poll (&item, 1, left > INT32_MAX ? INT32_MAX : (int) left);
        if (rc > 0)
            return item.revents ? item.revents : events;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

//  libpq notice processor: server notices (e.g. "already exists,
//  skipping") go to the debug log, not to stderr.
static void
s_notice (void *arg, const char *message)
{
    (void) arg;
    char line[AIGW_DB_ERR_MAX];
    snprintf (line, sizeof line, "%s", message);
    s_one_line (line);
    aigw_debug ("database notice: %s", line);
}

//  Writes CONN's last error into ERR, after PREFIX, on one line. Returns -1.
static int
s_conn_err (PGconn *conn, const char *prefix, char *err, size_t err_size)
{
    char message[AIGW_DB_ERR_MAX];
    snprintf (message, sizeof message, "%s", conn ? PQerrorMessage (conn) : "out of memory");
    s_one_line (message);
    return s_err (err, err_size, "%s%s", prefix, *message ? message : "unknown error");
}

//  Sends SQL (a parameterized statement, or when SCRIPT a multi-statement
//  script with no parameters) and waits at most TIMEOUT_MS for every
//  result. Returns the last result, or NULL with ERR set. Caller owns it.
static PGresult *
s_exec (PGconn *conn, const char *sql, int nparams, const char *const *params, bool script,
        int64_t timeout_ms, char *err, size_t err_size)
{
    assert (conn && sql);
    if (PQstatus (conn) != CONNECTION_OK) {
        s_conn_err (conn, "database connection lost: ", err, err_size);
        return NULL;
    }
    int64_t deadline = s_now_ms () + timeout_ms;
    int sent = script ? PQsendQuery (conn, sql)
                      : PQsendQueryParams (conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (!sent) {
        s_conn_err (conn, "database: ", err, err_size);
        return NULL;
    }
    //  Non-blocking mode: push the query out, reading while we wait so the
    //  server never stalls on a full socket.
    int flushed;
    while ((flushed = PQflush (conn)) == 1) {
        int ready = s_wait (conn, POLLIN | POLLOUT, deadline);
        if (ready == 0) {
            s_err (err, err_size, "database: no answer within %" PRId64 " ms", timeout_ms);
            return NULL;
        }
        if (ready < 0 || ((ready & POLLIN) && !PQconsumeInput (conn))) {
            s_conn_err (conn, "database connection lost: ", err, err_size);
            return NULL;
        }
    }
    if (flushed < 0) {
        s_conn_err (conn, "database connection lost: ", err, err_size);
        return NULL;
    }
    PGresult *last = NULL;
    bool failed = false;
    for (;;) {
        while (PQisBusy (conn)) {
            int ready = s_wait (conn, POLLIN, deadline);
            if (ready == 0) {
                PQclear (last);
                s_err (err, err_size, "database: no answer within %" PRId64 " ms", timeout_ms);
                return NULL;
            }
            if (ready < 0 || !PQconsumeInput (conn)) {
                PQclear (last);
                s_conn_err (conn, "database connection lost: ", err, err_size);
                return NULL;
            }
        }
        PGresult *result = PQgetResult (conn);
        if (!result)
            break;
        ExecStatusType status = PQresultStatus (result);
        if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK
            || status == PGRES_EMPTY_QUERY) {
            if (failed)
                PQclear (result);
            else {
                PQclear (last);
                last = result;
            }
            continue;
        }
        if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
            //  Not a statement this function can serve; the connection is
            //  left mid-COPY, and the caller must close it.
            PQclear (result);
            PQclear (last);
            s_err (err, err_size, "database: COPY is not supported here");
            return NULL;
        }
        if (!failed) {
            //  The primary message only: DETAIL may quote row values.
            const char *primary = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
            char message[AIGW_DB_ERR_MAX];
            snprintf (message, sizeof message, "%s",
                      primary ? primary : PQresultErrorMessage (result));
            s_one_line (message);
            s_err (err, err_size, "database: %s", *message ? message : "query failed");
            failed = true;
        }
        PQclear (result);
    }
    if (failed) {
        PQclear (last);
        return NULL;
    }
    if (!last)
        s_err (err, err_size, "database: no result");
    return last;
}

//  Runs SQL (no parameters, one statement) and discards the result.
//  Returns 0 or -1 with ERR set.
static int
s_run (PGconn *conn, const char *sql, int64_t timeout_ms, char *err, size_t err_size)
{
    PGresult *result = s_exec (conn, sql, 0, NULL, false, timeout_ms, err, err_size);
    PQclear (result);
    return result ? 0 : -1;
}

//  --------------------------------------------------------------------------
//  Connections

//  Open a connection to config->database_url within the connect timeout,
//  with statement_timeout set. Returns NULL with ERR set (no password).
//  Caller owns the result.
PGconn *
aigw_db_connect (const aigw_config_t *config, char *err, size_t err_size)
{
    assert (config);
    const char *url = config->database_url;
    if (!url || !*url) {
        s_err (err, err_size,
               "no database: set DATABASE_URL (or database.url in the "
               "config file)");
        return NULL;
    }
    int64_t timeout_ms = config->db_connect_timeout_ms;
    int64_t timeout_s = (timeout_ms + 999) / 1000;
    if (timeout_s < AIGW_DB_LIBPQ_TIMEOUT_MIN_S)
        timeout_s = AIGW_DB_LIBPQ_TIMEOUT_MIN_S;
    char timeout_text[AIGW_DB_INT_TEXT_MAX];
    snprintf (timeout_text, sizeof timeout_text, "%" PRId64, timeout_s);
    //  Keywords after dbname override what the URL says.
    const char *keys[] = {"dbname", "connect_timeout", "client_encoding", "application_name", NULL};
    const char *values[] = {url, timeout_text, "UTF8", AIGW_DB_APPLICATION_NAME, NULL};
    int64_t deadline = s_now_ms () + timeout_ms;
    PGconn *conn = PQconnectStartParams (keys, values, 1);
    PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
    bool timed_out = false;
    while (conn && PQstatus (conn) != CONNECTION_BAD && polling != PGRES_POLLING_OK
           && polling != PGRES_POLLING_FAILED) {
        int ready = s_wait (conn, polling == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (ready == 0) {
            timed_out = true;
            break;
        }
        if (ready < 0)
            break;
        polling = PQconnectPoll (conn);
    }
    if (!conn || PQstatus (conn) != CONNECTION_OK) {
        if (timed_out) {
            const char *host = conn ? PQhost (conn) : NULL;
            const char *port = conn ? PQport (conn) : NULL;
            s_err (err, err_size,
                   "cannot connect to the database%s%s%s%s: no answer within %" PRId64
                   " ms (database.connect_timeout_ms)",
                   host && *host ? " at " : "", host && *host ? host : "", port && *port ? ":" : "",
                   port && *port ? port : "", timeout_ms);
        }
        else
            s_conn_err (conn, "cannot connect to the database: ", err, err_size);
        if (err)
            s_redact (err, err_size, url);
        PQfinish (conn);
        return NULL;
    }
    PQsetNoticeProcessor (conn, s_notice, NULL);
    if (PQsetnonblocking (conn, 1) != 0) {
        s_conn_err (conn, "cannot connect to the database: ", err, err_size);
        if (err)
            s_redact (err, err_size, url);
        PQfinish (conn);
        return NULL;
    }
    char statement_timeout[AIGW_DB_INT_TEXT_MAX];
    snprintf (statement_timeout, sizeof statement_timeout, "%" PRId64,
              config->db_statement_timeout_ms);
    const char *params[] = {statement_timeout};
    PGresult *result
        = s_exec (conn, "SELECT pg_catalog.set_config ('statement_timeout', $1, false)", 1, params,
                  false, timeout_ms, err, err_size);
    if (!result) {
        if (err)
            s_redact (err, err_size, url);
        PQfinish (conn);
        return NULL;
    }
    PQclear (result);
    return conn;
}

//  Run one statement with text parameters, at most TIMEOUT_MS. Returns the
//  result or NULL with ERR set. Caller owns the result.
PGresult *
aigw_db_exec (PGconn *conn, const char *sql, int nparams, const char *const *params,
              int64_t timeout_ms, char *err, size_t err_size)
{
    assert (conn && sql && nparams >= 0);
    return s_exec (conn, sql, nparams, params, false, timeout_ms, err, err_size);
}

//  --------------------------------------------------------------------------
//  Migrations

//  Takes the migration lock on CONN, polling while another session holds
//  it, for at most AIGW_DB_MIGRATE_LOCK_WAIT_MS. Returns 0 or -1 with ERR.
static int
s_lock (PGconn *conn, int64_t timeout_ms, char *err, size_t err_size)
{
    char key[AIGW_DB_INT_TEXT_MAX];
    snprintf (key, sizeof key, "%" PRId64, AIGW_DB_MIGRATE_LOCK_KEY);
    const char *params[] = {key};
    int64_t deadline = s_now_ms () + AIGW_DB_MIGRATE_LOCK_WAIT_MS;
    bool said = false;
    for (;;) {
        PGresult *result = s_exec (conn, "SELECT pg_catalog.pg_try_advisory_lock ($1::bigint)", 1,
                                   params, false, timeout_ms, err, err_size);
        if (!result)
            return -1;
        bool locked = PQntuples (result) == 1 && PQgetvalue (result, 0, 0)[0] == 't';
        PQclear (result);
        if (locked)
            return 0;
        if (s_now_ms () > deadline)
            return s_err (err, err_size,
                          "another aigw migrate has held the migration lock for over %d s",
                          AIGW_DB_MIGRATE_LOCK_WAIT_MS / 1000);
        if (!said) {
            aigw_info ("waiting for another aigw migrate to finish");
            said = true;
        }
        usleep (AIGW_DB_MIGRATE_LOCK_POLL_MS * 1000);
    }
}

//  Releases the migration lock; best effort (closing the session releases
//  it too).
static void
s_unlock (PGconn *conn, int64_t timeout_ms)
{
    if (PQstatus (conn) != CONNECTION_OK || PQtransactionStatus (conn) != PQTRANS_IDLE)
        return;
    char key[AIGW_DB_INT_TEXT_MAX];
    snprintf (key, sizeof key, "%" PRId64, AIGW_DB_MIGRATE_LOCK_KEY);
    const char *params[] = {key};
    char err[AIGW_DB_ERR_MAX];
    PQclear (s_exec (conn, "SELECT pg_catalog.pg_advisory_unlock ($1::bigint)", 1, params, false,
                     timeout_ms, err, sizeof err));
}

//  Applies MIGRATION in its own transaction and records it. Returns 0, or
//  -1 with ERR set after rolling back.
static int
s_apply (PGconn *conn, const aigw_migration_t *migration, int64_t timeout_ms, char *err,
         size_t err_size)
{
    int64_t started = s_now_ms ();
    char problem[AIGW_DB_ERR_MAX] = "";
    char version[AIGW_DB_INT_TEXT_MAX];
    snprintf (version, sizeof version, "%d", migration->version);
    char long_timeout[AIGW_DB_INT_TEXT_MAX];
    snprintf (long_timeout, sizeof long_timeout, "%d", AIGW_DB_MIGRATE_STATEMENT_TIMEOUT_MS);
    const char *timeout_params[] = {long_timeout};
    const char *record_params[] = {version, migration->name, migration->sha256};
    int64_t script_timeout = AIGW_DB_MIGRATE_STATEMENT_TIMEOUT_MS + AIGW_DB_CLIENT_GRACE_MS;
    int rc = s_run (conn, "BEGIN", timeout_ms, problem, sizeof problem);
    PGresult *result = NULL;
    if (rc == 0) {
        result = s_exec (conn, "SELECT pg_catalog.set_config ('statement_timeout', $1, true)", 1,
                         timeout_params, false, timeout_ms, problem, sizeof problem);
        rc = result ? 0 : -1;
        PQclear (result);
    }
    if (rc == 0) {
        result
            = s_exec (conn, migration->sql, 0, NULL, true, script_timeout, problem, sizeof problem);
        rc = result ? 0 : -1;
        PQclear (result);
    }
    if (rc == 0) {
        result = s_exec (conn,
                         "INSERT INTO aigw_migrations (version, name, sha256, applied_at)"
                         " VALUES ($1::integer, $2, $3, now ())",
                         3, record_params, false, timeout_ms, problem, sizeof problem);
        rc = result ? 0 : -1;
        PQclear (result);
    }
    if (rc == 0)
        rc = s_run (conn, "COMMIT", timeout_ms, problem, sizeof problem);
    if (rc) {
        if (PQstatus (conn) == CONNECTION_OK && PQtransactionStatus (conn) != PQTRANS_ACTIVE) {
            char ignored[AIGW_DB_ERR_MAX];
            s_run (conn, "ROLLBACK", timeout_ms, ignored, sizeof ignored);
        }
        return s_err (err, err_size, "migration %03d_%s failed and was rolled back: %s",
                      migration->version, migration->name, problem);
    }
    aigw_info ("applied migration %03d_%s (%" PRId64 " ms)", migration->version, migration->name,
               s_now_ms () - started);
    return 0;
}

//  Checks the applied migrations (RESULT: version, name, sha256) against
//  the embedded ones, and marks in APPLIED (one flag per embedded
//  migration) those already applied. Returns 0 or -1 with ERR set.
static int
s_check_applied (PGresult *result, bool *applied, char *err, size_t err_size)
{
    int unknown = 0;
    int newest = 0;
    for (int row = 0; row < PQntuples (result); row++) {
        int version = atoi (PQgetvalue (result, row, 0));
        const char *sha256 = PQgetvalue (result, row, 2);
        size_t i = 0;
        while (i < aigw_migrations_count && aigw_migrations[i].version != version)
            i++;
        if (i == aigw_migrations_count) {
            unknown++;
            newest = version > newest ? version : newest;
            continue;
        }
        if (strcmp (sha256, aigw_migrations[i].sha256) != 0)
            return s_err (err, err_size,
                          "migration %03d_%s was changed after it was applied (sha256 in "
                          "the database %.12s..., in this build %.12s...): restore the "
                          "original file and put the change in a new migration",
                          version, aigw_migrations[i].name, sha256, aigw_migrations[i].sha256);
        applied[i] = true;
    }
    if (unknown)
        aigw_warn ("the database has %d migration(s) this build does not know (up to "
                   "version %d): it was migrated by a newer aigw",
                   unknown, newest);
    return 0;
}

//  Apply every pending embedded migration, under the advisory lock.
//  Returns 0 or -1 with ERR set.
int
aigw_db_migrate (const aigw_config_t *config, char *err, size_t err_size)
{
    assert (config);
    PGconn *conn = aigw_db_connect (config, err, err_size);
    if (!conn)
        return -1;
    int64_t timeout_ms = config->db_statement_timeout_ms + AIGW_DB_CLIENT_GRACE_MS;
    int rc = -1;
    bool locked = false;
    bool *applied = calloc (aigw_migrations_count + 1, sizeof *applied);
    PGresult *result = NULL;
    if (!applied) {
        s_err (err, err_size, "out of memory");
        goto done;
    }
    if (PQserverVersion (conn) < AIGW_DB_MIN_SERVER_VERSION) {
        s_err (err, err_size, "PostgreSQL %d or later is needed; the server is %d.%d",
               AIGW_DB_MIN_SERVER_VERSION / 10000, PQserverVersion (conn) / 10000,
               PQserverVersion (conn) % 10000);
        goto done;
    }
    if (s_lock (conn, timeout_ms, err, err_size))
        goto done;
    locked = true;
    if (s_run (conn, s_sql_migrations_table, timeout_ms, err, err_size))
        goto done;
    result = s_exec (conn, "SELECT version, name, sha256 FROM aigw_migrations ORDER BY version", 0,
                     NULL, false, timeout_ms, err, err_size);
    if (!result || s_check_applied (result, applied, err, err_size))
        goto done;
    int count = 0;
    for (size_t i = 0; i < aigw_migrations_count; i++) {
        if (applied[i])
            continue;
        if (s_apply (conn, &aigw_migrations[i], timeout_ms, err, err_size))
            goto done;
        count++;
    }
    aigw_info ("database schema is at version %d (%d migration(s) applied now)",
               aigw_migrations[aigw_migrations_count - 1].version, count);
    rc = 0;
done:
    PQclear (result);
    if (locked)
        s_unlock (conn, timeout_ms);
    free (applied);
    PQfinish (conn);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/socket.h>

#define S_TEST_THREADS    3      //  concurrent migrators
#define S_TEST_NAME_MAX   64     //  a test database's name
#define S_TEST_TIMEOUT_MS 10000  //  client deadline for the test's own queries

//  A copy of URL (a libpq URI or key=value string) that names database
//  DBNAME instead, as a key=value string. Caller frees; NULL on error.
static char *
s_test_url (const char *url, const char *dbname)
{
    PQconninfoOption *options = PQconninfoParse (url, NULL);
    assert (options);
    size_t size = 256 + strlen (url) * 2 + strlen (dbname) * 2;
    char *out = calloc (1, size);
    assert (out);
    size_t used = 0;
    for (PQconninfoOption *o = options; o->keyword; o++) {
        const char *value = strcmp (o->keyword, "dbname") == 0 ? dbname : o->val;
        if (!value)
            continue;
        used += (size_t) snprintf (out + used, size - used, "%s%s='", used ? " " : "", o->keyword);
        for (const char *c = value; *c; c++) {
            if (*c == '\'' || *c == '\\')
                out[used++] = '\\';
            out[used++] = *c;
        }
        out[used++] = '\'';
        assert (used < size);
    }
    bool has_dbname = strstr (out, "dbname='") != NULL;
    if (!has_dbname)
        snprintf (out + used, size - used, "%sdbname='%s'", used ? " " : "", dbname);
    PQconninfoFree (options);
    return out;
}

//  Runs SQL on CONN (no parameters) and asserts success; returns the result.
static PGresult *
s_test_exec (PGconn *conn, const char *sql)
{
    char err[AIGW_DB_ERR_MAX];
    PGresult *result = aigw_db_exec (conn, sql, 0, NULL, S_TEST_TIMEOUT_MS, err, sizeof err);
    if (!result)
        printf ("\n    %s: %s\n", sql, err);
    assert (result);
    return result;
}

//  The single value of a one-row, one-column SQL answer, copied into OUT.
static void
s_test_value (PGconn *conn, const char *sql, char *out, size_t size)
{
    PGresult *result = s_test_exec (conn, sql);
    assert (PQntuples (result) == 1 && PQnfields (result) == 1);
    snprintf (out, size, "%s", PQgetvalue (result, 0, 0));
    PQclear (result);
}

//  Creates a fresh database on ADMIN's server and returns a config copy of
//  BASE's settings that points at it; NAME gets its name.
static aigw_config_t *
s_test_database (PGconn *admin, const char *base_url, char *name, size_t size)
{
    static int serial = 0;
    snprintf (name, size, "aigw_selftest_%d_%d_%ld", (int) getpid (), ++serial,
              (long) (s_now_ms () % 1000000));
    char sql[AIGW_DB_ERR_MAX];
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", name);
    PQclear (s_test_exec (admin, sql));
    char err[AIGW_DB_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    free (config->database_url);
    config->database_url = s_test_url (base_url, name);
    return config;
}

//  Drops database NAME (and its sessions) on ADMIN's server.
static void
s_test_drop (PGconn *admin, const char *name)
{
    char sql[AIGW_DB_ERR_MAX];
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    PQclear (s_test_exec (admin, sql));
}

//  One concurrent migrator's arguments and outcome.
typedef struct {
    const aigw_config_t *config;  //  where to migrate
    int rc;                       //  aigw_db_migrate's answer
    char err[AIGW_DB_ERR_MAX];    //  its error
} s_test_migrator_t;

//  Thread body: one aigw_db_migrate.
static void *
s_test_migrator (void *arg)
{
    s_test_migrator_t *self = (s_test_migrator_t *) arg;
    self->rc = aigw_db_migrate (self->config, self->err, sizeof self->err);
    return NULL;
}

//  The applied migrations of CONN's database, as one text.
static void
s_test_applied (PGconn *conn, char *out, size_t size)
{
    s_test_value (conn,
                  "SELECT string_agg (version || ' ' || name || ' ' || sha256 || ' ' || "
                  "applied_at, ';' ORDER BY version) FROM aigw_migrations",
                  out, size);
}

//  Asserts that connecting with URL fails, quickly, with an error that
//  never shows SECRET. Returns the error in ERR.
static void
s_test_refused (bool verbose, const char *url, const char *secret, int64_t timeout_ms, char *err,
                size_t err_size)
{
    char config_err[AIGW_DB_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, config_err, sizeof config_err);
    assert (config);
    free (config->database_url);
    config->database_url = url ? strdup (url) : NULL;
    config->db_connect_timeout_ms = timeout_ms;
    int64_t started = s_now_ms ();
    PGconn *conn = aigw_db_connect (config, err, err_size);
    int64_t took = s_now_ms () - started;
    if (verbose)
        printf ("\n    refused in %" PRId64 " ms: %s", took, err);
    assert (conn == NULL);
    assert (*err);
    assert (took < timeout_ms + 1000);
    if (secret)
        assert (strstr (err, secret) == NULL);
    aigw_config_destroy (&config);
}

//  Selftest: needs DATABASE_URL (label pg; fails without it); uses only
//  databases it creates (and drops) on that server.
void
aigw_db_test (bool verbose)
{
    //  The embedded migrations: sorted, unique, hashed right.
    assert (aigw_migrations_count >= 1);
    for (size_t i = 0; i < aigw_migrations_count; i++) {
        const aigw_migration_t *m = &aigw_migrations[i];
        assert (m->version > 0 && m->name && *m->name && m->sql && *m->sql);
        if (i > 0)
            assert (m->version > aigw_migrations[i - 1].version);
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        assert (EVP_Digest (m->sql, strlen (m->sql), digest, &len, EVP_sha256 (), NULL));
        char hex[65];
        for (unsigned int b = 0; b < len; b++)
            snprintf (hex + 2 * b, 3, "%02x", digest[b]);
        assert (len == 32 && strcmp (hex, m->sha256) == 0);
    }

    //  Redaction: passwords go, whatever form the URL takes.
    char text[AIGW_DB_ERR_MAX];
    snprintf (text, sizeof text, "bad \"pw-1\" in x pw-1");
    s_redact (text, sizeof text, "postgresql://u:pw-1@h/d");
    assert (strcmp (text, "bad \"***\" in x ***") == 0);
    snprintf (text, sizeof text, "a p%%41ss b pAss");
    s_redact (text, sizeof text, "postgres://u:p%41ss@h/d");
    assert (strcmp (text, "a *** b ***") == 0);
    snprintf (text, sizeof text, "x 'se cret' se cret");
    s_redact (text, sizeof text, "host=h password = 'se cret' dbname=d");
    assert (strstr (text, "se cret") == NULL);
    snprintf (text, sizeof text, "invalid \"q1w2\" and \"e3\" end");
    s_redact (text, sizeof text, "postgresql://u:q1w2%zze3@h/d");
    assert (strcmp (text, "invalid \"***\" and \"***\" end") == 0);
    snprintf (text, sizeof text, "m ?password=abc&x");
    s_redact (text, sizeof text, "postgresql://h/d?password=abc&sslmode=x");
    assert (strstr (text, "abc") == NULL);

    //  Connection errors: quick, clear, never the password.
    char err[AIGW_DB_ERR_MAX];
    s_test_refused (verbose, NULL, NULL, 1000, err, sizeof err);
    assert (strstr (err, "DATABASE_URL"));
    s_test_refused (verbose, "postgresql://aigw:s3cr3t-pw@127.0.0.1:1/x", "s3cr3t-pw", 2000, err,
                    sizeof err);
    s_test_refused (verbose, "postgresql://aigw:s3cr3t-pw@127.0.0.1:notaport/x", "s3cr3t-pw", 2000,
                    err, sizeof err);
    s_test_refused (verbose, "postgresql://aigw:s3cr3t%zz@127.0.0.1/x", "s3cr3t", 2000, err,
                    sizeof err);
    s_test_refused (verbose, "host=127.0.0.1 port=1 password='s3cr3t pw' bogus", "s3cr3t", 2000,
                    err, sizeof err);
    //  A server that accepts TCP but never speaks: the deadline holds.
    int listener = socket (AF_INET, SOCK_STREAM, 0);
    assert (listener >= 0);
    struct sockaddr_in address
        = {.sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK)};
    assert (bind (listener, (struct sockaddr *) &address, sizeof address) == 0);
    assert (listen (listener, 8) == 0);
    socklen_t address_len = sizeof address;
    assert (getsockname (listener, (struct sockaddr *) &address, &address_len) == 0);
    char silent[128];
    snprintf (silent, sizeof silent, "postgresql://aigw:s3cr3t-pw@127.0.0.1:%d/x",
              ntohs (address.sin_port));
    s_test_refused (verbose, silent, "s3cr3t-pw", 300, err, sizeof err);
    assert (strstr (err, "no answer within 300 ms"));
    close (listener);

    const char *base_url = getenv ("DATABASE_URL");
    if (!base_url || !*base_url) {
        //  Label pg: a missing database fails, it does not pass as skipped.
        fprintf (stderr, "db: DATABASE_URL is unset; this selftest needs PostgreSQL "
                         "(tests/run.sh starts one)\n");
        exit (1);
    }
    //  Migration progress is info; keep the test's output to its verdict.
    aigw_log_level_t level = aigw_log_level ();
    if (!verbose)
        aigw_log_set_level (AIGW_LOG_ERROR);
    aigw_config_t *base = aigw_config_new (NULL, err, sizeof err);
    assert (base);
    PGconn *admin = aigw_db_connect (base, err, sizeof err);
    if (!admin)
        printf ("\n    %s\n", err);
    assert (admin);

    //  Parameters travel as data, byte for byte.
    const char *tricky = "O'Brien \"x\"; DROP TABLE tenants;-- \xe6\x97\xa5\xe6\x9c\xac "
                         "\xf0\x9f\x9a\x80 \\ $1";
    const char *params[] = {tricky, NULL};
    PGresult *result = aigw_db_exec (admin, "SELECT $1::text, $2::text IS NULL", 2, params,
                                     S_TEST_TIMEOUT_MS, err, sizeof err);
    assert (result && PQntuples (result) == 1);
    assert (strcmp (PQgetvalue (result, 0, 0), tricky) == 0);
    assert (strcmp (PQgetvalue (result, 0, 1), "t") == 0);
    PQclear (result);
    char value[AIGW_DB_ERR_MAX];
    s_test_value (admin, "SHOW application_name", value, sizeof value);
    assert (strcmp (value, AIGW_DB_APPLICATION_NAME) == 0);
    s_test_value (admin, "SHOW statement_timeout", value, sizeof value);
    assert (strcmp (value, "5s") == 0);
    //  A server error is an error, with the server's message.
    result = aigw_db_exec (admin, "SELECT 1/0", 0, NULL, S_TEST_TIMEOUT_MS, err, sizeof err);
    assert (!result && strstr (err, "division by zero"));
    //  Two statements in one call are refused: no injected second statement.
    result
        = aigw_db_exec (admin, "SELECT 1; SELECT 2", 0, NULL, S_TEST_TIMEOUT_MS, err, sizeof err);
    assert (!result);

    //  The server's statement_timeout, then the client's own deadline.
    base->db_statement_timeout_ms = 200;
    PGconn *conn = aigw_db_connect (base, err, sizeof err);
    assert (conn);
    int64_t started = s_now_ms ();
    result
        = aigw_db_exec (conn, "SELECT pg_sleep (5)", 0, NULL, S_TEST_TIMEOUT_MS, err, sizeof err);
    assert (!result && strstr (err, "statement timeout"));
    assert (s_now_ms () - started < 3000);
    started = s_now_ms ();
    result = aigw_db_exec (conn, "SELECT pg_sleep (0.1)", 0, NULL, 20, err, sizeof err);
    assert (!result && strstr (err, "no answer within 20 ms"));
    assert (s_now_ms () - started < 1000);
    PQfinish (conn);
    base->db_statement_timeout_ms = AIGW_DEFAULT_DB_STATEMENT_TIMEOUT_MS;

    //  Migrate a fresh database, twice: the second run changes nothing.
    char name[S_TEST_NAME_MAX];
    aigw_config_t *config = s_test_database (admin, base_url, name, sizeof name);
    int rc = aigw_db_migrate (config, err, sizeof err);
    if (rc)
        printf ("\n    %s\n", err);
    assert (rc == 0);
    conn = aigw_db_connect (config, err, sizeof err);
    assert (conn);
    s_test_value (conn,
                  "SELECT count (to_regclass (t)) FROM unnest (ARRAY['tenants', 'roles', "
                  "'api_keys', 'audit_log', 'aigw_migrations']) AS t",
                  value, sizeof value);
    assert (strcmp (value, "5") == 0);
    s_test_value (conn, "SELECT count (*) FROM roles WHERE builtin", value, sizeof value);
    assert (strcmp (value, "4") == 0);
    s_test_value (conn, "SELECT count (*) FROM aigw_migrations", value, sizeof value);
    assert (atoi (value) == (int) aigw_migrations_count);
    char first[4 * AIGW_DB_ERR_MAX];
    char second[4 * AIGW_DB_ERR_MAX];
    s_test_applied (conn, first, sizeof first);
    assert (strstr (first, aigw_migrations[0].sha256));
    rc = aigw_db_migrate (config, err, sizeof err);
    assert (rc == 0);
    s_test_applied (conn, second, sizeof second);
    assert (strcmp (first, second) == 0);
    s_test_value (conn, "SELECT count (*) FROM roles", value, sizeof value);
    assert (strcmp (value, "4") == 0);

    //  An applied migration that changed since is refused, by name.
    PQclear (s_test_exec (conn, "UPDATE aigw_migrations SET sha256 = repeat ('0', 64)"
                                " WHERE version = (SELECT min (version) FROM aigw_migrations)"));
    rc = aigw_db_migrate (config, err, sizeof err);
    if (verbose)
        printf ("\n    %s", err);
    assert (rc == -1);
    char want[AIGW_DB_ERR_MAX];
    snprintf (want, sizeof want, "migration %03d_%s was changed after it was applied",
              aigw_migrations[0].version, aigw_migrations[0].name);
    assert (strstr (err, want));
    //  The lock was released: a fixed table migrates again.
    char restore[AIGW_DB_ERR_MAX];
    snprintf (restore, sizeof restore,
              "UPDATE aigw_migrations SET sha256 = '%s' WHERE version = %d",
              aigw_migrations[0].sha256, aigw_migrations[0].version);
    PQclear (s_test_exec (conn, restore));
    assert (aigw_db_migrate (config, err, sizeof err) == 0);
    //  A migration this build does not know (a newer aigw ran) is fine.
    PQclear (s_test_exec (conn, "INSERT INTO aigw_migrations (version, name, sha256)"
                                " VALUES (999999, 'future', repeat ('f', 64))"));
    assert (aigw_db_migrate (config, err, sizeof err) == 0);
    PQfinish (conn);
    s_test_drop (admin, name);
    aigw_config_destroy (&config);

    //  Three migrators at once end with one schema.
    config = s_test_database (admin, base_url, name, sizeof name);
    s_test_migrator_t migrators[S_TEST_THREADS];
    pthread_t threads[S_TEST_THREADS];
    for (int i = 0; i < S_TEST_THREADS; i++) {
        migrators[i] = (s_test_migrator_t){.config = config, .rc = 1};
        assert (pthread_create (&threads[i], NULL, s_test_migrator, &migrators[i]) == 0);
    }
    for (int i = 0; i < S_TEST_THREADS; i++) {
        pthread_join (threads[i], NULL);
        if (migrators[i].rc)
            printf ("\n    migrator %d: %s\n", i, migrators[i].err);
        assert (migrators[i].rc == 0);
    }
    conn = aigw_db_connect (config, err, sizeof err);
    assert (conn);
    s_test_value (conn, "SELECT count (*) = count (DISTINCT version) FROM aigw_migrations", value,
                  sizeof value);
    assert (strcmp (value, "t") == 0);
    s_test_value (conn, "SELECT count (*) FROM aigw_migrations", value, sizeof value);
    assert (atoi (value) == (int) aigw_migrations_count);
    s_test_value (conn, "SELECT count (*) FROM roles", value, sizeof value);
    assert (strcmp (value, "4") == 0);
    PQfinish (conn);
    s_test_drop (admin, name);
    aigw_config_destroy (&config);

    PQfinish (admin);
    aigw_config_destroy (&base);
    aigw_log_set_level (level);
}
