/*  aigw_operator: the operator's command line for the control plane.

    Each command loads the config, opens one connection (aigw_db_connect:
    bounded connect and statement timeouts), runs parameterized statements,
    and prints. Changes run in one transaction with their audit_log row.
    Input from the command line is checked here first, so a mistake gets a
    message that names the option and exit code 2 rather than a database
    error. Names are stored and printed byte for byte (valid UTF-8, no
    control characters); --json output is built with Jansson. */
#include "aigw_operator.h"
#include "aigw_config.h"
#include "aigw_db.h"
#include "aigw_keys.h"
#include "aigw_log.h"
#include "aigw_text.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

//  Longest tenant or key name, in characters (the schema's CHECK).
#define AIGW_OPERATOR_NAME_MAX_CHARS 200
//  Most models one key may list, and the longest model name.
#define AIGW_OPERATOR_MODELS_MAX 256
#define AIGW_OPERATOR_MODEL_MAX_CHARS 200
//  --rpm and --tpm: positive, within PostgreSQL's integer.
#define AIGW_OPERATOR_LIMIT_MAX INT64_C (2147483647)
//  --budget-usd: numeric(14, 4), so 10 integer digits and 4 decimals.
#define AIGW_OPERATOR_BUDGET_INT_DIGITS 10
#define AIGW_OPERATOR_BUDGET_FRAC_DIGITS 4
//  --expires: the latest year accepted.
#define AIGW_OPERATOR_YEAR_MAX 9999
//  Longest --expires after normalizing ("YYYY-MM-DDTHH:MM:SS.fffffffffZ").
#define AIGW_OPERATOR_TIME_MAX 64
//  Longest OS user name kept for audit_log.
#define AIGW_OPERATOR_ACTOR_MAX 256
//  Digits of a UUID in its text form, with dashes.
#define AIGW_OPERATOR_UUID_LEN 36
//  --json output: reals (budget_usd) with enough digits to round-trip
//  numeric(14, 4) and no float noise.
#define AIGW_OPERATOR_JSON_FLAGS (JSON_INDENT (2) | JSON_REAL_PRECISION (15))

//  A timestamptz as RFC 3339 in UTC, from SQL.
#define S_TS(col) "to_char (" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

//  The columns every key answer has, in the order of s_key_col_t; needs
//  api_keys AS k joined to tenants AS t.
#define S_KEY_COLUMNS                                                          \
    "k.id, k.tenant_id, t.name, k.name, k.prefix, k.role, " S_TS ("k.expires_at") \
    ", " S_TS ("k.revoked_at") ", to_json (k.models)::text, k.rpm, k.tpm, "      \
    "k.budget_usd::text, " S_TS ("k.created_at") ", " S_TS ("k.rotated_at")     \
    ", CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked' WHEN k.expires_at <= "   \
    "now () THEN 'expired' ELSE 'active' END"

//  Column numbers of S_KEY_COLUMNS.
typedef enum {
    S_KEY_ID,
    S_KEY_TENANT_ID,
    S_KEY_TENANT_NAME,
    S_KEY_NAME,
    S_KEY_PREFIX,
    S_KEY_ROLE,
    S_KEY_EXPIRES_AT,
    S_KEY_REVOKED_AT,
    S_KEY_MODELS,
    S_KEY_RPM,
    S_KEY_TPM,
    S_KEY_BUDGET_USD,
    S_KEY_CREATED_AT,
    S_KEY_ROTATED_AT,
    S_KEY_STATUS
} s_key_col_t;

//  Options, as bits: each command accepts a set of them.
enum {
    S_OPT_CONFIG = 1 << 0,
    S_OPT_JSON = 1 << 1,
    S_OPT_TENANT = 1 << 2,
    S_OPT_NAME = 1 << 3,
    S_OPT_ROLE = 1 << 4,
    S_OPT_EXPIRES = 1 << 5,
    S_OPT_MODELS = 1 << 6,
    S_OPT_RPM = 1 << 7,
    S_OPT_TPM = 1 << 8,
    S_OPT_BUDGET = 1 << 9,
    S_OPT_HELP = 1 << 10
};

//  The command line of one command, as parsed.
typedef struct {
    const char *config;         //  --config FILE
    bool json;                  //  --json
    const char *tenant;         //  --tenant ID_OR_NAME
    const char *name;           //  --name NAME
    const char *role;           //  --role ROLE
    const char *expires;        //  --expires RFC3339
    const char *models;         //  --models a,b
    const char *rpm;            //  --rpm N
    const char *tpm;            //  --tpm N
    const char *budget;         //  --budget-usd X
    bool help;                  //  --help
    const char *args[2];        //  positional arguments
    int arg_count;              //  how many
    char expires_utc[AIGW_OPERATOR_TIME_MAX]; //  --expires, checked, in UTC
    char *models_json;          //  --models, checked, as a JSON array text
} s_args_t;

//  One command's state: what it talks to and how it prints.
typedef struct {
    aigw_config_t *config;      //  loaded settings
    PGconn *conn;               //  the database, once connected
    bool json;                  //  print JSON
    int64_t timeout_ms;         //  client deadline of one statement
    char actor[AIGW_OPERATOR_ACTOR_MAX]; //  OS user, for audit_log
} s_cli_t;

//  One command of the table.
typedef struct {
    const char *group;          //  "tenants", "keys", or "migrate"
    const char *name;           //  "create", ...; NULL for migrate
    unsigned options;           //  S_OPT_* it accepts
    int args;                   //  positional arguments it needs
    int (*run) (s_cli_t *self, s_args_t *args); //  the command
} s_command_t;

static const char *s_help_migrate
    = "usage: aigw migrate [--config FILE]\n"
      "Applies the pending database migrations (schemas/sql, built into aigw), each\n"
      "in its own transaction, under an advisory lock: safe to run from many hosts\n"
      "at once, and again. Refuses to run if an applied migration was edited.\n"
      "The database is DATABASE_URL, or database.url in the config file.\n";

static const char *s_help_tenants
    = "usage: aigw tenants create NAME [--json] [--config FILE]\n"
      "       aigw tenants list [--json] [--config FILE]\n"
      "Creates or lists tenants. NAME: 1 to 200 characters of UTF-8 text, unique.\n";

static const char *s_help_keys
    = "usage: aigw keys create --tenant ID_OR_NAME --name NAME [--role ROLE]\n"
      "                        [--expires RFC3339] [--models a,b] [--rpm N] [--tpm N]\n"
      "                        [--budget-usd X] [--json] [--config FILE]\n"
      "       aigw keys list [--tenant ID_OR_NAME] [--json] [--config FILE]\n"
      "       aigw keys revoke ID [--config FILE]\n"
      "       aigw keys rotate ID [--json] [--config FILE]\n"
      "create prints the new secret once: store it, it cannot be shown again.\n"
      "rotate gives a key a new secret (printed once); the old one stops working.\n"
      "--role: admin, tenant-admin, developer (default) or viewer. --expires: e.g.\n"
      "2030-01-31T00:00:00Z. --models: the models the key may use (default: all).\n"
      "--rpm, --tpm: requests and tokens per minute. --budget-usd: spend cap.\n";


//  --------------------------------------------------------------------------
//  Messages

//  Prints "aigw: MESSAGE" on stderr. Returns AIGW_OPERATOR_EXIT_ERROR.
static int
s_fail (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

//  (Definition; the contract is on the declaration above.)
static int
s_fail (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "aigw: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
    return AIGW_OPERATOR_EXIT_ERROR;
}

//  Prints "aigw COMMAND: MESSAGE" and USAGE on stderr. Returns
//  AIGW_OPERATOR_EXIT_USAGE.
static int
s_usage_error (const char *command, const char *usage, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  (Definition; the contract is on the declaration above.)
static int
s_usage_error (const char *command, const char *usage, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "aigw %s: ", command);
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n%s", usage);
    va_end (args);
    return AIGW_OPERATOR_EXIT_USAGE;
}


//  --------------------------------------------------------------------------
//  Input checks

//  Checks that TEXT is a usable name of at most MAX characters: not empty,
//  UTF-8, no control characters. Returns NULL, or what is wrong.
static const char *
s_check_name (const char *text, int64_t max)
{
    if (!*text)
        return "must not be empty";
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return "must not contain control characters (newlines, tabs, ...)";
    int64_t chars = aigw_text_utf8_check (text);
    if (chars < 0)
        return "must be valid UTF-8";
    if (chars > max)
        return max == AIGW_OPERATOR_NAME_MAX_CHARS ? "must be at most 200 characters"
                                                   : "is too long";
    return NULL;
}

//  True if TEXT is a US-dollar amount numeric(14, 4) holds: up to 10
//  digits, then optionally a point and 1 to 4 digits.
static bool
s_valid_budget (const char *text)
{
    size_t digits = strspn (text, "0123456789");
    if (digits == 0 || digits > AIGW_OPERATOR_BUDGET_INT_DIGITS)
        return false;
    if (text[digits] == 0)
        return true;
    if (text[digits] != '.')
        return false;
    size_t fraction = strspn (text + digits + 1, "0123456789");
    return fraction >= 1 && fraction <= AIGW_OPERATOR_BUDGET_FRAC_DIGITS
           && text[digits + 1 + fraction] == 0;
}

//  True if TEXT is a UUID in text form (8-4-4-4-12 hex digits).
static bool
s_is_uuid (const char *text)
{
    if (strlen (text) != AIGW_OPERATOR_UUID_LEN)
        return false;
    for (int i = 0; i < AIGW_OPERATOR_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = text[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex)
            return false;
    }
    return true;
}

//  True if TEXT could be a role name (the schema's CHECK).
static bool
s_valid_role (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > 63 || text[0] < 'a' || text[0] > 'z')
        return false;
    return strspn (text, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len;
}

//  Reads exactly COUNT digits at *P into *VALUE and advances *P. Returns 0
//  or -1.
static int
s_digits (const char **p, int count, int *value)
{
    int result = 0;
    for (int i = 0; i < count; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        result = result * 10 + (c - '0');
    }
    *p += count;
    *value = result;
    return 0;
}

//  Parses an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM))
//  into *WHEN and writes it, in UTC with its fraction, into OUT ("...Z").
//  Returns 0, or -1.
static int
s_parse_rfc3339 (const char *text, time_t *when, char *out, size_t out_size)
{
    const char *p = text;
    int year, month, day, hour, minute, second;
    if (s_digits (&p, 4, &year) || *p++ != '-' || s_digits (&p, 2, &month) || *p++ != '-'
        || s_digits (&p, 2, &day))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (s_digits (&p, 2, &hour) || *p++ != ':' || s_digits (&p, 2, &minute) || *p++ != ':'
        || s_digits (&p, 2, &second))
        return -1;
    const char *fraction = "";
    size_t fraction_len = 0;
    if (*p == '.') {
        fraction = p;
        fraction_len = 1 + strspn (p + 1, "0123456789");
        if (fraction_len < 2 || fraction_len > 10)
            return -1;
        p += fraction_len;
    }
    int offset = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int offset_hours, offset_minutes;
        if (s_digits (&p, 2, &offset_hours) || *p++ != ':'
            || s_digits (&p, 2, &offset_minutes) || offset_hours > 23 || offset_minutes > 59)
            return -1;
        offset = sign * (offset_hours * 3600 + offset_minutes * 60);
    }
    else
        return -1;
    if (*p)
        return -1;
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1970 || year > AIGW_OPERATOR_YEAR_MAX || month < 1 || month > 12 || day < 1
        || day > days[month - 1] || (month == 2 && day == 29 && !leap) || hour > 23
        || minute > 59 || second > 60)
        return -1;
    struct tm tm = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                    .tm_hour = hour, .tm_min = minute, .tm_sec = second};
    time_t utc = timegm (&tm);
    if (utc == (time_t) -1)
        return -1;
    utc -= offset;
    struct tm norm;
    if (!gmtime_r (&utc, &norm))
        return -1;
    snprintf (out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d%.*sZ", norm.tm_year + 1900,
              norm.tm_mon + 1, norm.tm_mday, norm.tm_hour, norm.tm_min, norm.tm_sec,
              (int) fraction_len, fraction);
    *when = utc;
    return 0;
}

//  Turns --models "a,b" into a JSON array text ["a","b"] (items trimmed of
//  spaces). Returns a new string (caller frees), or NULL with PROBLEM set.
static char *
s_models_json (const char *text, const char **problem)
{
    json_t *array = json_array ();
    char *copy = strdup (text);
    if (!array || !copy) {
        *problem = "out of memory";
        json_decref (array);
        free (copy);
        return NULL;
    }
    char *out = NULL;
    char *item = copy;
    for (;;) {
        char *comma = strchr (item, ',');
        if (comma)
            *comma = 0;
        while (*item == ' ')
            item++;
        size_t len = strlen (item);
        while (len > 0 && item[len - 1] == ' ')
            item[--len] = 0;
        const char *bad = s_check_name (item, AIGW_OPERATOR_MODEL_MAX_CHARS);
        if (bad) {
            *problem = *item ? "each model name must be UTF-8 text of at most 200 characters"
                             : "expected model names separated by commas, none empty";
            goto done;
        }
        if (json_array_size (array) >= AIGW_OPERATOR_MODELS_MAX) {
            *problem = "at most 256 models";
            goto done;
        }
        json_array_append_new (array, json_string (item));
        if (!comma)
            break;
        item = comma + 1;
    }
    out = json_dumps (array, JSON_COMPACT);
    if (!out)
        *problem = "out of memory";
done:
    json_decref (array);
    free (copy);
    return out;
}


//  --------------------------------------------------------------------------
//  Database helpers

//  Runs SQL with NPARAMS parameters; on error prints it and returns NULL.
//  Caller owns the result.
static PGresult *
s_query (s_cli_t *self, const char *sql, int nparams, const char *const *params)
{
    char err[AIGW_DB_ERR_MAX];
    PGresult *result = aigw_db_exec (self->conn, sql, nparams, params, self->timeout_ms, err,
                                     sizeof err);
    if (!result)
        s_fail ("%s", err);
    return result;
}

//  Runs SQL with no parameters and no rows wanted. Returns 0, or -1 after
//  printing the error.
static int
s_run (s_cli_t *self, const char *sql)
{
    PGresult *result = s_query (self, sql, 0, NULL);
    PQclear (result);
    return result ? 0 : -1;
}

//  Rolls back an open transaction, if the connection can still say so.
static void
s_rollback (s_cli_t *self)
{
    if (PQstatus (self->conn) == CONNECTION_OK
        && PQtransactionStatus (self->conn) == PQTRANS_INTRANS) {
        char err[AIGW_DB_ERR_MAX];
        PQclear (aigw_db_exec (self->conn, "ROLLBACK", 0, NULL, self->timeout_ms, err,
                               sizeof err));
    }
}

//  Value of ROW, COLUMN, or NULL when it is SQL NULL.
static const char *
s_value (const PGresult *result, int row, int column)
{
    return PQgetisnull (result, row, column) ? NULL : PQgetvalue (result, row, column);
}

//  Finds the tenant that ID_OR_NAME names (an id wins over a name), writing
//  its id into ID. Returns 0, or 1 after printing the error.
static int
s_resolve_tenant (s_cli_t *self, const char *id_or_name, char id[AIGW_OPERATOR_UUID_LEN + 1])
{
    const char *params[] = {s_is_uuid (id_or_name) ? id_or_name : NULL, id_or_name};
    PGresult *result = s_query (self,
                                "SELECT id FROM tenants WHERE id = $1::uuid OR name = $2"
                                " ORDER BY (id = $1::uuid) IS TRUE DESC LIMIT 1",
                                2, params);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    int rc = 0;
    if (PQntuples (result) == 0)
        rc = s_fail ("unknown tenant '%s' (aigw tenants list shows them)", id_or_name);
    else
        snprintf (id, AIGW_OPERATOR_UUID_LEN + 1, "%s", PQgetvalue (result, 0, 0));
    PQclear (result);
    return rc;
}

//  Checks that ROLE exists. Returns 0, or 1 after printing the error with
//  the roles there are.
static int
s_check_role (s_cli_t *self, const char *role)
{
    const char *params[] = {role};
    PGresult *result = s_query (self,
                                "SELECT bool_or (name = $1), string_agg (name, ', ' ORDER BY name)"
                                " FROM roles",
                                1, params);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    int rc = 0;
    if (strcmp (PQgetvalue (result, 0, 0), "t") != 0)
        rc = s_fail ("unknown role '%s' (roles: %s)", role, PQgetvalue (result, 0, 1));
    PQclear (result);
    return rc;
}


//  --------------------------------------------------------------------------
//  Output

//  A JSON string, or null for NULL.
static json_t *
s_json_string (const char *text)
{
    return text ? json_string (text) : json_null ();
}

//  A JSON integer from decimal TEXT, or null for NULL.
static json_t *
s_json_integer (const char *text)
{
    return text ? json_integer (strtoll (text, NULL, 10)) : json_null ();
}

//  Prints ROOT as JSON on stdout, then frees it. Returns 0, or 1 if it
//  cannot be printed. WIPE: the text holds a secret, wipe it after.
static int
s_print_json (json_t *root, bool wipe)
{
    char *text = root ? json_dumps (root, AIGW_OPERATOR_JSON_FLAGS) : NULL;
    json_decref (root);
    if (!text)
        return s_fail ("out of memory");
    printf ("%s\n", text);
    if (wipe)
        OPENSSL_cleanse (text, strlen (text));
    free (text);
    return fflush (stdout) == 0 ? 0 : s_fail ("cannot write the output: %s", strerror (errno));
}

//  Key ROW of RESULT (S_KEY_COLUMNS) as a JSON object; SECRET, when not
//  NULL, goes in as "key". Caller owns the result.
static json_t *
s_key_json (const PGresult *result, int row, const char *secret)
{
    json_t *key = json_object ();
    if (!key)
        return NULL;
    json_object_set_new (key, "id", s_json_string (s_value (result, row, S_KEY_ID)));
    if (secret)
        json_object_set_new (key, "key", json_string (secret));
    json_object_set_new (key, "prefix", s_json_string (s_value (result, row, S_KEY_PREFIX)));
    json_object_set_new (key, "name", s_json_string (s_value (result, row, S_KEY_NAME)));
    json_object_set_new (key, "role", s_json_string (s_value (result, row, S_KEY_ROLE)));
    json_object_set_new (key, "tenant_id",
                         s_json_string (s_value (result, row, S_KEY_TENANT_ID)));
    json_object_set_new (key, "tenant_name",
                         s_json_string (s_value (result, row, S_KEY_TENANT_NAME)));
    json_object_set_new (key, "status", s_json_string (s_value (result, row, S_KEY_STATUS)));
    json_object_set_new (key, "expires_at",
                         s_json_string (s_value (result, row, S_KEY_EXPIRES_AT)));
    json_object_set_new (key, "revoked_at",
                         s_json_string (s_value (result, row, S_KEY_REVOKED_AT)));
    const char *models = s_value (result, row, S_KEY_MODELS);
    json_t *list = models ? json_loads (models, 0, NULL) : NULL;
    json_object_set_new (key, "models", list ? list : json_null ());
    json_object_set_new (key, "rpm", s_json_integer (s_value (result, row, S_KEY_RPM)));
    json_object_set_new (key, "tpm", s_json_integer (s_value (result, row, S_KEY_TPM)));
    const char *budget = s_value (result, row, S_KEY_BUDGET_USD);
    json_object_set_new (key, "budget_usd",
                         budget ? json_real (strtod (budget, NULL)) : json_null ());
    json_object_set_new (key, "created_at",
                         s_json_string (s_value (result, row, S_KEY_CREATED_AT)));
    json_object_set_new (key, "rotated_at",
                         s_json_string (s_value (result, row, S_KEY_ROTATED_AT)));
    return key;
}

//  Prints key ROW of RESULT as text: one "field: value" line each, for the
//  fields that are set.
static void
s_key_text (const PGresult *result, int row)
{
    static const struct {
        s_key_col_t column;     //  column of S_KEY_COLUMNS
        const char *label;      //  what the line says
    } fields[] = {{S_KEY_ID, "id"},
                  {S_KEY_NAME, "name"},
                  {S_KEY_PREFIX, "prefix"},
                  {S_KEY_TENANT_NAME, "tenant"},
                  {S_KEY_TENANT_ID, "tenant id"},
                  {S_KEY_ROLE, "role"},
                  {S_KEY_STATUS, "status"},
                  {S_KEY_EXPIRES_AT, "expires"},
                  {S_KEY_REVOKED_AT, "revoked"},
                  {S_KEY_MODELS, "models"},
                  {S_KEY_RPM, "rpm"},
                  {S_KEY_TPM, "tpm"},
                  {S_KEY_BUDGET_USD, "budget usd"},
                  {S_KEY_CREATED_AT, "created"},
                  {S_KEY_ROTATED_AT, "rotated"}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *value = s_value (result, row, fields[i].column);
        if (value)
            printf ("  %-11s %s\n", fields[i].label, value);
    }
}

//  Prints a key's new SECRET (with the key, ROW of RESULT) once, and warns
//  on stderr that it will not be shown again. Returns the exit code.
static int
s_print_secret (s_cli_t *self, const PGresult *result, int row, const char *secret,
                const char *what)
{
    int rc = 0;
    if (self->json)
        rc = s_print_json (s_key_json (result, row, secret), true);
    else {
        printf ("%s\n", what);
        s_key_text (result, row);
        printf ("\n  %s\n\n", secret);
        rc = fflush (stdout) == 0 ? 0 : s_fail ("cannot write the output: %s", strerror (errno));
    }
    fprintf (stderr, "aigw: store this key now: it is shown only once and cannot be recovered "
                     "(aigw keys rotate %s makes a new one).\n",
             PQgetvalue (result, row, S_KEY_ID));
    return rc;
}


//  --------------------------------------------------------------------------
//  Commands

//  aigw migrate
static int
s_cmd_migrate (s_cli_t *self, s_args_t *args)
{
    char err[AIGW_DB_ERR_MAX];
    if (aigw_db_migrate (self->config, err, sizeof err))
        return s_fail ("migrate: %s", err);
    return 0;
}

//  aigw tenants create NAME
static int
s_cmd_tenants_create (s_cli_t *self, s_args_t *args)
{
    const char *name = args->args[0];
    const char *params[] = {name, self->actor};
    PGresult *result = s_query (
        self,
        "WITH t AS (INSERT INTO tenants (name) VALUES ($1) ON CONFLICT (name) DO NOTHING"
        "           RETURNING *),"
        " a AS (INSERT INTO audit_log (actor_type, actor_id, tenant_id, action, target_type,"
        "                              target_id, after)"
        "       SELECT 'cli', $2, t.id, 'tenants.create', 'tenant', t.id::text, to_jsonb (t)"
        "       FROM t)"
        " SELECT id, name, " S_TS ("created_at") " FROM t",
        2, params);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    int rc = 0;
    if (PQntuples (result) == 0)
        rc = s_fail ("a tenant with that name already exists: '%s'", name);
    else if (self->json) {
        json_t *tenant = json_pack ("{s:s, s:s, s:s}", "id", PQgetvalue (result, 0, 0), "name",
                                    PQgetvalue (result, 0, 1), "created_at",
                                    PQgetvalue (result, 0, 2));
        rc = s_print_json (tenant, false);
    }
    else
        printf ("created tenant\n  id          %s\n  name        %s\n  created     %s\n",
                PQgetvalue (result, 0, 0), PQgetvalue (result, 0, 1),
                PQgetvalue (result, 0, 2));
    PQclear (result);
    return rc;
}

//  aigw tenants list
static int
s_cmd_tenants_list (s_cli_t *self, s_args_t *args)
{
    PGresult *result = s_query (self,
                                "SELECT id, name, " S_TS ("created_at")
                                " FROM tenants ORDER BY created_at, id",
                                0, NULL);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    int rc = 0;
    if (self->json) {
        json_t *data = json_array ();
        for (int row = 0; data && row < PQntuples (result); row++)
            json_array_append_new (data, json_pack ("{s:s, s:s, s:s}", "id",
                                                    PQgetvalue (result, row, 0), "name",
                                                    PQgetvalue (result, row, 1), "created_at",
                                                    PQgetvalue (result, row, 2)));
        rc = s_print_json (json_pack ("{s:o, s:n}", "data", data, "next_cursor"), false);
    }
    else {
        printf ("%-36s  %-20s  %s\n", "ID", "CREATED", "NAME");
        for (int row = 0; row < PQntuples (result); row++)
            printf ("%-36s  %-20s  %s\n", PQgetvalue (result, row, 0),
                    PQgetvalue (result, row, 2), PQgetvalue (result, row, 1));
    }
    PQclear (result);
    return rc;
}

//  aigw keys create
static int
s_cmd_keys_create (s_cli_t *self, s_args_t *args)
{
    const char *role = args->role ? args->role : AIGW_DEFAULT_ROLE;
    char tenant_id[AIGW_OPERATOR_UUID_LEN + 1];
    int rc = s_resolve_tenant (self, args->tenant, tenant_id);
    if (rc == 0)
        rc = s_check_role (self, role);
    if (rc)
        return rc;
    char secret[AIGW_KEY_SECRET_LEN + 1];
    char prefix[AIGW_KEY_PREFIX_LEN + 1];
    char hash[AIGW_KEY_HASH_HEX_LEN + 1];
    if (aigw_keys_generate (secret, prefix))
        return s_fail ("cannot generate a key: the system's random generator failed");
    aigw_keys_hash_hex (secret, hash);
    //  --expires and --models were checked and normalized by s_validate.
    const char *params[] = {tenant_id,
                            args->name,
                            prefix,
                            hash,
                            role,
                            args->expires ? args->expires_utc : NULL,
                            args->models_json,
                            args->rpm,
                            args->tpm,
                            args->budget,
                            self->actor};
    PGresult *result = s_query (
        self,
        "WITH k AS (INSERT INTO api_keys (tenant_id, name, prefix, secret_sha256, role,"
        "                                 expires_at, models, rpm, tpm, budget_usd)"
        "           VALUES ($1::uuid, $2, $3, decode ($4, 'hex'), $5, $6::timestamptz,"
        "                   (SELECT array_agg (m ORDER BY n) FROM jsonb_array_elements_text"
        "                    ($7::jsonb) WITH ORDINALITY AS x (m, n)),"
        "                   $8::integer, $9::integer, $10::numeric)"
        "           RETURNING *),"
        " a AS (INSERT INTO audit_log (actor_type, actor_id, tenant_id, action, target_type,"
        "                              target_id, after)"
        "       SELECT 'cli', $11, k.tenant_id, 'keys.create', 'api_key', k.id::text,"
        "              to_jsonb (k) - 'secret_sha256' FROM k)"
        " SELECT " S_KEY_COLUMNS " FROM k JOIN tenants t ON t.id = k.tenant_id",
        11, params);
    if (result && PQntuples (result) == 1)
        rc = s_print_secret (self, result, 0, secret, "created key");
    else
        rc = result ? s_fail ("the key was not created") : AIGW_OPERATOR_EXIT_ERROR;
    OPENSSL_cleanse (secret, sizeof secret);
    PQclear (result);
    return rc;
}

//  aigw keys list [--tenant ID_OR_NAME]
static int
s_cmd_keys_list (s_cli_t *self, s_args_t *args)
{
    char tenant_id[AIGW_OPERATOR_UUID_LEN + 1];
    if (args->tenant) {
        int rc = s_resolve_tenant (self, args->tenant, tenant_id);
        if (rc)
            return rc;
    }
    const char *params[] = {args->tenant ? tenant_id : NULL};
    PGresult *result = s_query (self,
                                "SELECT " S_KEY_COLUMNS
                                " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
                                " WHERE $1::uuid IS NULL OR k.tenant_id = $1::uuid"
                                " ORDER BY k.created_at, k.id",
                                1, params);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    int rc = 0;
    if (self->json) {
        json_t *data = json_array ();
        for (int row = 0; data && row < PQntuples (result); row++)
            json_array_append_new (data, s_key_json (result, row, NULL));
        rc = s_print_json (json_pack ("{s:o, s:n}", "data", data, "next_cursor"), false);
    }
    else {
        printf ("%-36s  %-12s  %-12s  %-7s  %-20s  %s\n", "ID", "PREFIX", "ROLE", "STATUS",
                "CREATED", "TENANT / NAME");
        for (int row = 0; row < PQntuples (result); row++)
            printf ("%-36s  %-12s  %-12s  %-7s  %-20s  %s / %s\n",
                    PQgetvalue (result, row, S_KEY_ID), PQgetvalue (result, row, S_KEY_PREFIX),
                    PQgetvalue (result, row, S_KEY_ROLE), PQgetvalue (result, row, S_KEY_STATUS),
                    PQgetvalue (result, row, S_KEY_CREATED_AT),
                    PQgetvalue (result, row, S_KEY_TENANT_NAME),
                    PQgetvalue (result, row, S_KEY_NAME));
    }
    PQclear (result);
    return rc;
}

//  Opens a transaction and locks key ID, reading its audit "before" (the
//  row as JSON without the secret hash) into *BEFORE and whether it is
//  revoked. Returns 0, or 1 after printing the error (the transaction is
//  then rolled back). Caller clears *BEFORE.
static int
s_lock_key (s_cli_t *self, const char *id, PGresult **before)
{
    *before = NULL;
    if (s_run (self, "BEGIN"))
        return AIGW_OPERATOR_EXIT_ERROR;
    const char *params[] = {id};
    PGresult *result = s_query (self,
                                "SELECT to_jsonb (k) - 'secret_sha256', k.revoked_at IS NOT NULL,"
                                " " S_TS ("k.revoked_at")
                                " FROM api_keys k WHERE k.id = $1::uuid FOR UPDATE",
                                1, params);
    if (!result) {
        s_rollback (self);
        return AIGW_OPERATOR_EXIT_ERROR;
    }
    if (PQntuples (result) == 0) {
        PQclear (result);
        s_rollback (self);
        return s_fail ("no key with id %s (aigw keys list shows them)", id);
    }
    *before = result;
    return 0;
}

//  Writes the audit row of ACTION on key ID (BEFORE, AFTER: JSON texts),
//  then reads the key (S_KEY_COLUMNS) and commits. Returns the key, or NULL
//  after printing the error and rolling back.
static PGresult *
s_audit_commit (s_cli_t *self, const char *action, const char *id, const char *before,
                const char *after)
{
    const char *audit_params[] = {self->actor, action, id, before, after, id};
    PGresult *result = s_query (self,
                                "INSERT INTO audit_log (actor_type, actor_id, tenant_id, action,"
                                " target_type, target_id, before, after)"
                                " SELECT 'cli', $1, tenant_id, $2, 'api_key', $3, $4::jsonb,"
                                " $5::jsonb FROM api_keys WHERE id = $6::uuid",
                                6, audit_params);
    if (result) {
        PQclear (result);
        const char *params[] = {id};
        result = s_query (self,
                          "SELECT " S_KEY_COLUMNS
                          " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
                          " WHERE k.id = $1::uuid",
                          1, params);
    }
    if (result && s_run (self, "COMMIT") == 0)
        return result;
    PQclear (result);
    s_rollback (self);
    return NULL;
}

//  aigw keys revoke ID
static int
s_cmd_keys_revoke (s_cli_t *self, s_args_t *args)
{
    const char *id = args->args[0];
    PGresult *before = NULL;
    int rc = s_lock_key (self, id, &before);
    if (rc)
        return rc;
    if (strcmp (PQgetvalue (before, 0, 1), "t") == 0) {
        printf ("key %s was already revoked at %s\n", id, PQgetvalue (before, 0, 2));
        PQclear (before);
        s_rollback (self);
        return 0;
    }
    const char *params[] = {id};
    PGresult *after = s_query (self,
                               "UPDATE api_keys SET revoked_at = now (), updated_at = now ()"
                               " WHERE id = $1::uuid RETURNING to_jsonb (api_keys) - "
                               "'secret_sha256'",
                               1, params);
    PGresult *key = NULL;
    if (after)
        key = s_audit_commit (self, "keys.revoke", id, PQgetvalue (before, 0, 0),
                              PQgetvalue (after, 0, 0));
    else
        s_rollback (self);
    if (key)
        printf ("revoked key %s (%s) at %s\n", id, PQgetvalue (key, 0, S_KEY_NAME),
                PQgetvalue (key, 0, S_KEY_REVOKED_AT));
    rc = key ? 0 : AIGW_OPERATOR_EXIT_ERROR;
    PQclear (key);
    PQclear (after);
    PQclear (before);
    return rc;
}

//  aigw keys rotate ID
static int
s_cmd_keys_rotate (s_cli_t *self, s_args_t *args)
{
    const char *id = args->args[0];
    PGresult *before = NULL;
    int rc = s_lock_key (self, id, &before);
    if (rc)
        return rc;
    if (strcmp (PQgetvalue (before, 0, 1), "t") == 0) {
        PQclear (before);
        s_rollback (self);
        return s_fail ("key %s is revoked: create a new key instead", id);
    }
    char secret[AIGW_KEY_SECRET_LEN + 1];
    char prefix[AIGW_KEY_PREFIX_LEN + 1];
    char hash[AIGW_KEY_HASH_HEX_LEN + 1];
    if (aigw_keys_generate (secret, prefix)) {
        PQclear (before);
        s_rollback (self);
        return s_fail ("cannot generate a key: the system's random generator failed");
    }
    aigw_keys_hash_hex (secret, hash);
    const char *params[] = {id, hash, prefix};
    PGresult *after = s_query (self,
                               "UPDATE api_keys SET secret_sha256 = decode ($2, 'hex'),"
                               " prefix = $3, rotated_at = now (), updated_at = now ()"
                               " WHERE id = $1::uuid RETURNING to_jsonb (api_keys) - "
                               "'secret_sha256'",
                               3, params);
    PGresult *key = NULL;
    if (after)
        key = s_audit_commit (self, "keys.rotate", id, PQgetvalue (before, 0, 0),
                              PQgetvalue (after, 0, 0));
    else
        s_rollback (self);
    rc = key ? s_print_secret (self, key, 0, secret, "rotated key: the old secret no longer works")
             : AIGW_OPERATOR_EXIT_ERROR;
    OPENSSL_cleanse (secret, sizeof secret);
    PQclear (key);
    PQclear (after);
    PQclear (before);
    return rc;
}

//  Every command: group, name, options, positional arguments, body.
static const s_command_t s_commands[] = {
    {"migrate", NULL, S_OPT_CONFIG | S_OPT_HELP, 0, s_cmd_migrate},
    {"tenants", "create", S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP, 1, s_cmd_tenants_create},
    {"tenants", "list", S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP, 0, s_cmd_tenants_list},
    {"keys", "create",
     S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP | S_OPT_TENANT | S_OPT_NAME | S_OPT_ROLE
         | S_OPT_EXPIRES | S_OPT_MODELS | S_OPT_RPM | S_OPT_TPM | S_OPT_BUDGET,
     0, s_cmd_keys_create},
    {"keys", "list", S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP | S_OPT_TENANT, 0, s_cmd_keys_list},
    {"keys", "revoke", S_OPT_CONFIG | S_OPT_HELP, 1, s_cmd_keys_revoke},
    {"keys", "rotate", S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP, 1, s_cmd_keys_rotate},
};


//  --------------------------------------------------------------------------
//  Command line

//  Every option: its name, bit, and whether it takes a value.
static const struct {
    const char *name;           //  long option name
    unsigned bit;               //  S_OPT_*
    bool value;                 //  takes an argument
} s_options[] = {
    {"config", S_OPT_CONFIG, true},   {"json", S_OPT_JSON, false},
    {"tenant", S_OPT_TENANT, true},   {"name", S_OPT_NAME, true},
    {"role", S_OPT_ROLE, true},       {"expires", S_OPT_EXPIRES, true},
    {"models", S_OPT_MODELS, true},   {"rpm", S_OPT_RPM, true},
    {"tpm", S_OPT_TPM, true},         {"budget-usd", S_OPT_BUDGET, true},
    {"help", S_OPT_HELP, false},
};
#define S_OPTION_COUNT (sizeof s_options / sizeof s_options[0])

//  Parses ARGV (ARGV[0] is the command's last word) for COMMAND into ARGS.
//  Returns 0, or the usage exit code after printing what is wrong.
static int
s_parse (const s_command_t *command, const char *label, const char *usage, int argc,
         char **argv, s_args_t *args)
{
    struct option longs[S_OPTION_COUNT + 1];
    int count = 0;
    for (size_t i = 0; i < S_OPTION_COUNT; i++)
        if (command->options & s_options[i].bit)
            longs[count++] = (struct option) {s_options[i].name,
                                              s_options[i].value ? required_argument
                                                                 : no_argument,
                                              NULL, (int) i};
    longs[count] = (struct option) {NULL, 0, NULL, 0};
    const char **fields[] = {&args->config, NULL,        &args->tenant, &args->name,
                             &args->role,   &args->expires, &args->models, &args->rpm,
                             &args->tpm,    &args->budget, NULL};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long (argc, argv, ":h", longs, NULL)) != -1) {
        if (c == 'h') {
            args->help = true;
            continue;
        }
        if (c == ':')
            return s_usage_error (label, usage, "%s needs a value", argv[optind - 1]);
        if (c == '?')
            return s_usage_error (label, usage, "unknown option %s", argv[optind - 1]);
        unsigned bit = s_options[c].bit;
        if (bit == S_OPT_JSON)
            args->json = true;
        else if (bit == S_OPT_HELP)
            args->help = true;
        else {
            if (*fields[c])
                return s_usage_error (label, usage, "--%s given twice", s_options[c].name);
            *fields[c] = optarg;
        }
    }
    if (args->help)
        return 0;
    for (int i = optind; i < argc; i++) {
        if (args->arg_count >= command->args)
            return s_usage_error (label, usage, "unexpected argument '%s'", argv[i]);
        args->args[args->arg_count++] = argv[i];
    }
    if (args->arg_count < command->args)
        return s_usage_error (label, usage, "missing %s",
                              strcmp (command->group, "tenants") == 0 ? "NAME" : "ID");
    return 0;
}

//  Checks the values of ARGS for COMMAND before any database work.
//  Returns 0, or the usage exit code after printing what is wrong.
static int
s_validate (const s_command_t *command, const char *label, const char *usage, s_args_t *args)
{
    const char *bad;
    int64_t number;
    bool keys = strcmp (command->group, "keys") == 0;
    bool create = command->name && strcmp (command->name, "create") == 0;
    if (!keys && create && (bad = s_check_name (args->args[0], AIGW_OPERATOR_NAME_MAX_CHARS)))
        return s_usage_error (label, usage, "NAME %s", bad);
    if (keys && command->args == 1 && !s_is_uuid (args->args[0]))
        return s_usage_error (label, usage, "ID: expected a key id (a UUID, as aigw keys list "
                                            "shows), got '%s'", args->args[0]);
    if (args->tenant && (bad = s_check_name (args->tenant, AIGW_OPERATOR_NAME_MAX_CHARS)))
        return s_usage_error (label, usage, "--tenant %s", bad);
    if (!(keys && create))
        return 0;
    if (!args->tenant)
        return s_usage_error (label, usage, "--tenant is required");
    if (!args->name)
        return s_usage_error (label, usage, "--name is required");
    if ((bad = s_check_name (args->name, AIGW_OPERATOR_NAME_MAX_CHARS)))
        return s_usage_error (label, usage, "--name %s", bad);
    if (args->role && !s_valid_role (args->role))
        return s_usage_error (label, usage, "--role: '%s' is not a role name (lowercase "
                                            "letters, digits, _ and -)", args->role);
    if (args->expires) {
        time_t when;
        if (s_parse_rfc3339 (args->expires, &when, args->expires_utc, sizeof args->expires_utc))
            return s_usage_error (label, usage, "--expires: expected an RFC 3339 time such as "
                                                "2030-01-31T00:00:00Z, got '%s'", args->expires);
        if (when <= time (NULL))
            return s_usage_error (label, usage, "--expires: %s is in the past", args->expires);
    }
    if (args->models) {
        const char *problem = NULL;
        args->models_json = s_models_json (args->models, &problem);
        if (!args->models_json)
            return s_usage_error (label, usage, "--models: %s", problem);
    }
    if (args->rpm && aigw_text_integer (args->rpm, 1, AIGW_OPERATOR_LIMIT_MAX, &number))
        return s_usage_error (label, usage, "--rpm: expected an integer from 1 to %" PRId64,
                              AIGW_OPERATOR_LIMIT_MAX);
    if (args->tpm && aigw_text_integer (args->tpm, 1, AIGW_OPERATOR_LIMIT_MAX, &number))
        return s_usage_error (label, usage, "--tpm: expected an integer from 1 to %" PRId64,
                              AIGW_OPERATOR_LIMIT_MAX);
    if (args->budget && !s_valid_budget (args->budget))
        return s_usage_error (label, usage, "--budget-usd: expected an amount such as 25 or "
                                            "12.50 (at most 10 digits, then up to 4 decimals)");
    return 0;
}

//  The OS user running this, for audit_log, into OUT.
static void
s_actor (char *out, size_t size)
{
    struct passwd entry;
    struct passwd *found = NULL;
    char buffer[4096];
    if (getpwuid_r (geteuid (), &entry, buffer, sizeof buffer, &found) == 0 && found
        && found->pw_name && *found->pw_name)
        snprintf (out, size, "%s", found->pw_name);
    else
        snprintf (out, size, "uid:%u", (unsigned) geteuid ());
}

//  True if COMMAND is an operator command.
bool
aigw_operator_handles (const char *command)
{
    return command
           && (strcmp (command, "migrate") == 0 || strcmp (command, "tenants") == 0
               || strcmp (command, "keys") == 0);
}

//  The help text of COMMAND, or NULL.
const char *
aigw_operator_help (const char *command)
{
    if (!command)
        return NULL;
    if (strcmp (command, "migrate") == 0)
        return s_help_migrate;
    if (strcmp (command, "tenants") == 0)
        return s_help_tenants;
    if (strcmp (command, "keys") == 0)
        return s_help_keys;
    return NULL;
}

//  Run one operator command; returns the exit code.
int
aigw_operator_main (int argc, char **argv)
{
    assert (argc >= 1 && aigw_operator_handles (argv[0]));
    const char *group = argv[0];
    const char *usage = aigw_operator_help (group);
    bool has_sub = strcmp (group, "migrate") != 0;
    if (has_sub && (argc < 2 || argv[1][0] == '-')) {
        if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)) {
            printf ("%s", usage);
            return 0;
        }
        return s_usage_error (group, usage, "needs a command");
    }
    const s_command_t *command = NULL;
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp (s_commands[i].group, group) == 0
            && (!has_sub || strcmp (s_commands[i].name, argv[1]) == 0))
            command = &s_commands[i];
    if (!command)
        return s_usage_error (group, usage, "unknown command '%s'", argv[1]);
    char label[64];
    snprintf (label, sizeof label, "%s%s%s", group, has_sub ? " " : "",
              has_sub ? command->name : "");
    s_args_t args = {0};
    int shift = has_sub ? 1 : 0;
    int rc = s_parse (command, label, usage, argc - shift, argv + shift, &args);
    if (rc)
        return rc;
    if (args.help) {
        printf ("%s", usage);
        return 0;
    }
    rc = s_validate (command, label, usage, &args);
    if (rc) {
        free (args.models_json);
        return rc;
    }

    aigw_log_set_ident (strcmp (group, "migrate") == 0 ? "migrate" : "cli");
    char err[AIGW_CONFIG_ERR_MAX];
    s_cli_t self = {.json = args.json};
    self.config = aigw_config_new (args.config, err, sizeof err);
    if (!self.config) {
        fprintf (stderr, "aigw: invalid config: %s\n", err);
        free (args.models_json);
        return AIGW_OPERATOR_EXIT_USAGE;
    }
    aigw_log_level_t level;
    if (aigw_log_level_parse (self.config->log_level, &level) == 0)
        aigw_log_set_level (level);
    self.timeout_ms = self.config->db_statement_timeout_ms + AIGW_DB_CLIENT_GRACE_MS;
    s_actor (self.actor, sizeof self.actor);
    if (command->run != s_cmd_migrate) {
        char db_err[AIGW_DB_ERR_MAX];
        self.conn = aigw_db_connect (self.config, db_err, sizeof db_err);
        if (!self.conn) {
            rc = s_fail ("%s", db_err);
            goto done;
        }
    }
    rc = command->run (&self, &args);
done:
    PQfinish (self.conn);
    aigw_config_destroy (&self.config);
    free (args.models_json);
    return rc;
}
