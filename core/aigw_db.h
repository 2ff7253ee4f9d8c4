/*  aigw_db: PostgreSQL connections and schema migrations.

    aigw_db_connect opens one libpq connection with the config's timeouts;
    the connection belongs to the caller (one per actor: libpq connections
    are not thread-safe). aigw_db_exec runs one parameterized statement with
    a client-side deadline, so no call here waits forever.

    Migrations are schemas/sql/NNN_name.sql, embedded at build time
    (schemas/sql_embed.cmake) into aigw_migrations[]. aigw_db_migrate applies
    the pending ones, each in its own transaction, under a session-level
    advisory lock, and records them in aigw_migrations (version, name,
    sha256, applied_at). It refuses to run when an applied migration's
    SHA-256 differs from the embedded one: a migration, once applied, is
    never edited; add a new one. A migration runs inside a transaction, so
    it cannot use statements that refuse one (CREATE INDEX CONCURRENTLY).

    Errors never carry the connection string's password or a query's
    parameters: only libpq's and the server's messages, with any password
    from the URL masked. */
#ifndef AIGW_DB_H_INCLUDED
#define AIGW_DB_H_INCLUDED

#include "aigw_config.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The advisory lock key every `aigw migrate` takes ("aigw" then 1).
#define AIGW_DB_MIGRATE_LOCK_KEY INT64_C (0x6169677700000001)
//  How long a migrator waits for another one to finish.
#define AIGW_DB_MIGRATE_LOCK_WAIT_MS 120000
//  statement_timeout inside a migration: DDL on a large table is slow.
#define AIGW_DB_MIGRATE_STATEMENT_TIMEOUT_MS 600000
//  What the client waits past the server's statement_timeout before it
//  gives up on an answer (a dead network, a stopped server).
#define AIGW_DB_CLIENT_GRACE_MS 2000
//  Oldest server with gen_random_uuid () built in.
#define AIGW_DB_MIN_SERVER_VERSION 130000
//  Longest error text aigw_db writes (longer is cut).
#define AIGW_DB_ERR_MAX 512

//  One embedded migration (generated from schemas/sql by CMake).
typedef struct {
    int version;         //  NNN of NNN_name.sql
    const char *name;    //  name of NNN_name.sql
    const char *sql;     //  the file's text
    const char *sha256;  //  SHA-256 of the file, 64 lowercase hex digits
} aigw_migration_t;

//  The embedded migrations, sorted by version, and how many there are.
extern const aigw_migration_t aigw_migrations[];
extern const size_t aigw_migrations_count;

//  Open a connection to config->database_url (DATABASE_URL) within
//  config->db_connect_timeout_ms, with application_name "aigw", client
//  encoding UTF-8 and statement_timeout = config->db_statement_timeout_ms.
//  The connection is left in non-blocking mode. Returns NULL with ERR set
//  (no password in it). Caller owns the result (PQfinish).
PGconn *aigw_db_connect (const aigw_config_t *config, char *err, size_t err_size);

//  Run one SQL statement with NPARAMS text parameters ($1..; a NULL entry
//  is SQL NULL), waiting at most TIMEOUT_MS for the answer; on timeout the
//  query is cancelled. Returns the result (PGRES_TUPLES_OK or
//  PGRES_COMMAND_OK), or NULL with ERR set to the server's primary message
//  or libpq's (no DETAIL, which may quote row data). After a client-side
//  timeout or a lost connection, CONN is unusable: PQfinish it. Caller owns
//  the result (PQclear).
PGresult *aigw_db_exec (PGconn *conn, const char *sql, int nparams, const char *const *params,
                        int64_t timeout_ms, char *err, size_t err_size);

//  Apply every pending embedded migration to config's database. Safe to run
//  from many processes and hosts at once, and to run again (nothing
//  changes). Returns 0, or -1 with ERR set: no database, cannot connect,
//  server too old, an applied migration was edited, a migration failed
//  (rolled back), or another migrator held the lock too long.
int aigw_db_migrate (const aigw_config_t *config, char *err, size_t err_size);

//  Selftest. Skips ("skipped: no DATABASE_URL") when DATABASE_URL is unset;
//  otherwise creates, migrates and drops its own databases on that server.
void aigw_db_test (bool verbose);

#endif
