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
#include "aigw_cp_sql.h"
#include "aigw_db.h"
#include "aigw_keys.h"
#include "aigw_log.h"
#include "aigw_models.h"
#include "aigw_secret.h"
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
#define AIGW_OPERATOR_MODELS_MAX      256
#define AIGW_OPERATOR_MODEL_MAX_CHARS 200
//  --rpm and --tpm: positive, within PostgreSQL's integer.
#define AIGW_OPERATOR_LIMIT_MAX INT64_C (2147483647)
//  --budget-usd: numeric(14, 4), so 10 integer digits and 4 decimals.
#define AIGW_OPERATOR_BUDGET_INT_DIGITS  10
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

//  actor_type of the audit rows the CLI writes.
#define AIGW_OPERATOR_ACTOR_TYPE "cli"

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
    const char *config;                        //  --config FILE
    bool json;                                 //  --json
    const char *tenant;                        //  --tenant ID_OR_NAME
    const char *name;                          //  --name NAME
    const char *role;                          //  --role ROLE
    const char *expires;                       //  --expires RFC3339
    const char *models;                        //  --models a,b
    const char *rpm;                           //  --rpm N
    const char *tpm;                           //  --tpm N
    const char *budget;                        //  --budget-usd X
    bool help;                                 //  --help
    const char *args[2];                       //  positional arguments
    int arg_count;                             //  how many
    char expires_utc[AIGW_OPERATOR_TIME_MAX];  //  --expires, checked, in UTC
    char *models_json;                         //  --models, checked, as a JSON array text
} s_args_t;

//  One command's state: what it talks to and how it prints.
typedef struct {
    aigw_config_t *config;                //  loaded settings
    PGconn *conn;                         //  the database, once connected
    bool json;                            //  print JSON
    int64_t timeout_ms;                   //  client deadline of one statement
    char actor[AIGW_OPERATOR_ACTOR_MAX];  //  OS user, for audit_log
} s_cli_t;

//  One command of the table.
typedef struct {
    const char *group;                           //  "tenants", "keys", or "migrate"
    const char *name;                            //  "create", ...; NULL for migrate
    unsigned options;                            //  S_OPT_* it accepts
    int args;                                    //  positional arguments it needs
    int (*run) (s_cli_t *self, s_args_t *args);  //  the command
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

static const char *s_help_secrets
    = "usage: aigw secrets rotate [--config FILE]\n"
      "Re-encrypts every provider api_key stored in the database under the current\n"
      "secret key (AIGW_SECRET_KEY, or the first key of secrets.key_file), opening\n"
      "each with whichever configured key sealed it (secrets.previous_keys keeps the\n"
      "old ones); plain-text values left from before are encrypted too. Values\n"
      "already under the current key are left alone, so it can run again. Exits 1\n"
      "if a value could not be opened (its key is not configured); the others are\n"
      "still rewritten.\n";

//  --------------------------------------------------------------------------
//  Messages

//  Prints "aigw: MESSAGE" on stderr. Returns AIGW_OPERATOR_EXIT_ERROR.
static int s_fail (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

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
static int s_usage_error (const char *command, const char *usage, const char *format, ...)
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
        if (s_digits (&p, 2, &offset_hours) || *p++ != ':' || s_digits (&p, 2, &offset_minutes)
            || offset_hours > 23 || offset_minutes > 59)
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
        || day > days[month - 1] || (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59
        || second > 60)
        return -1;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = month - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = minute,
                    .tm_sec = second};
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
//  Database helpers: the statements are aigw_cp_sql's, shared with the
//  admin API; the CLI acts as a principal of every tenant with every
//  permission, and signs audit rows as "cli" and the OS user.

//  Runs STATEMENT with PARAMS (its own values; the CLI's principal fills
//  the rest); on error prints it and returns NULL. Caller owns the result.
static PGresult *
s_query (s_cli_t *self, const aigw_cp_sql_t *statement, const char **params)
{
    const aigw_cp_principal_t cli = {
        .all = true, .perms = "*", .actor_type = AIGW_OPERATOR_ACTOR_TYPE, .actor_id = self->actor};
    if (params)
        aigw_cp_sql_principal (statement, &cli, params);
    char err[AIGW_DB_ERR_MAX];
    PGresult *result = aigw_db_exec (self->conn, statement->text, statement->count, params,
                                     self->timeout_ms, err, sizeof err);
    if (!result)
        s_fail ("%s", err);
    return result;
}

//  The JSON object in ROW, COLUMN of RESULT, or NULL when it is SQL NULL or
//  the row is missing. Caller owns the result (json_decref).
static json_t *
s_json_cell (const PGresult *result, int row, int column)
{
    if (row >= PQntuples (result) || PQgetisnull (result, row, column))
        return NULL;
    return json_loads (PQgetvalue (result, row, column), 0, NULL);
}

//  The count in ROW 0, COLUMN of RESULT.
static int64_t
s_count (const PGresult *result, int column)
{
    return PQntuples (result) ? strtoll (PQgetvalue (result, 0, column), NULL, 10) : 0;
}

//  Member NAME of OBJECT as a string, or NULL.
static const char *
s_member (const json_t *object, const char *name)
{
    return json_string_value (json_object_get (object, name));
}

//  An RFC 3339 time of the statements (milliseconds) to the CLI's shape,
//  whole seconds, in OUT; NULL for NULL. to_char cuts, never rounds, so
//  this is the time the seconds-only format would give.
static const char *
s_seconds (const char *time, char out[AIGW_OPERATOR_TIME_MAX])
{
    if (!time)
        return NULL;
    snprintf (out, AIGW_OPERATOR_TIME_MAX, "%s", time);
    char *dot = strchr (out, '.');
    if (dot)
        memmove (dot, "Z", 2);
    return out;
}

//  Finds the tenant that ID_OR_NAME names (an id wins over a name). Returns
//  it as the statements show it, or NULL after printing the error. Caller
//  owns the result.
static json_t *
s_find_tenant (s_cli_t *self, const char *id_or_name)
{
    PGresult *result = NULL;
    if (s_is_uuid (id_or_name)) {
        const char *params[AIGW_CP_TENANT_GET_COUNT] = {[AIGW_CP_TENANT_GET_ID] = id_or_name};
        result = s_query (self, &aigw_cp_sql_tenant_get, params);
        if (!result)
            return NULL;
        if (PQntuples (result) == 0)
            PQclear (result);
        else
            goto found;
    }
    const char *params[AIGW_CP_TENANT_LIST_COUNT] = {[AIGW_CP_TENANT_LIST_NAME] = id_or_name};
    result = s_query (self, &aigw_cp_sql_tenant_list, params);
    if (!result)
        return NULL;
found:;
    json_t *tenant = s_json_cell (result, 0, 0);
    PQclear (result);
    if (!tenant)
        s_fail ("unknown tenant '%s' (aigw tenants list shows them)", id_or_name);
    return tenant;
}

//  Every tenant, oldest first (rows: tenant JSON, cursor, id), or NULL
//  after printing the error. Caller owns the result.
static PGresult *
s_tenants (s_cli_t *self)
{
    const char *params[AIGW_CP_TENANT_LIST_COUNT] = {NULL};
    return s_query (self, &aigw_cp_sql_tenant_list, params);
}

//  Checks that ROLE exists. Returns 0, or 1 after printing the error with
//  the roles there are.
static int
s_check_role (s_cli_t *self, const char *role)
{
    PGresult *result = s_query (self, &aigw_cp_sql_roles, NULL);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    bool known = false;
    json_t *names = json_array ();
    for (int row = 0; names && row < PQntuples (result); row++) {
        json_t *each = s_json_cell (result, row, 0);
        const char *name = s_member (each, "name");
        if (name && strcmp (name, role) == 0)
            known = true;
        if (name)
            json_array_append_new (names, json_string (name));
        json_decref (each);
    }
    PQclear (result);
    int rc = 0;
    if (!known) {
        //  "a, b, c", the roles in name order.
        size_t size = 1, index;
        json_t *name;
        json_array_foreach (names, index, name)
            size += strlen (json_string_value (name)) + 2;
        char *list = calloc (1, size);
        json_array_foreach (names, index, name) {
            if (list && index)
                strcat (list, ", ");
            if (list)
                strcat (list, json_string_value (name));
        }
        rc = s_fail ("unknown role '%s' (roles: %s)", role, list ? list : "");
        free (list);
    }
    json_decref (names);
    return rc;
}

//  --------------------------------------------------------------------------
//  Output

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

//  Ends a list: prints DATA (taken) as the --json page, which is every
//  row, or just frees it after the text lines. Returns the exit code.
static int
s_print_list (s_cli_t *self, json_t *data)
{
    if (self->json)
        return s_print_json (json_pack ("{s:o, s:n}", "data", data, "next_cursor"), false);
    json_decref (data);
    return 0;
}

//  TENANT (as the statements show it) as the CLI's JSON object, with its
//  creation time CREATED in whole seconds. Caller owns the result.
static json_t *
s_tenant_json (const json_t *tenant, const char *created)
{
    return json_pack ("{s:O, s:O, s:s}", "id", json_object_get (tenant, "id"), "name",
                      json_object_get (tenant, "name"), "created_at", created);
}

//  A time member NAME of OBJECT, in whole seconds, as a JSON string or null.
static json_t *
s_json_time (const json_t *object, const char *name)
{
    char time[AIGW_OPERATOR_TIME_MAX];
    const char *value = s_seconds (s_member (object, name), time);
    return value ? json_string (value) : json_null ();
}

//  Member NAME of OBJECT, copied, or null.
static json_t *
s_json_copy (const json_t *object, const char *name)
{
    json_t *value = json_object_get (object, name);
    return value ? json_deep_copy (value) : json_null ();
}

//  KEY (as the statements show it) of tenant TENANT_NAME as the CLI's JSON
//  object; SECRET, when not NULL, goes in as "key". Caller owns the result.
static json_t *
s_key_json (const json_t *key, const char *tenant_name, const char *secret)
{
    json_t *out = json_object ();
    if (!out)
        return NULL;
    json_object_set_new (out, "id", s_json_copy (key, "id"));
    if (secret)
        json_object_set_new (out, "key", json_string (secret));
    json_object_set_new (out, "prefix", s_json_copy (key, "prefix"));
    json_object_set_new (out, "name", s_json_copy (key, "name"));
    json_object_set_new (out, "role", s_json_copy (key, "role"));
    json_object_set_new (out, "tenant_id", s_json_copy (key, "tenant_id"));
    json_object_set_new (out, "tenant_name",
                         tenant_name ? json_string (tenant_name) : json_null ());
    json_object_set_new (out, "status", s_json_copy (key, "status"));
    json_object_set_new (out, "expires_at", s_json_time (key, "expires_at"));
    json_object_set_new (out, "revoked_at", s_json_time (key, "revoked_at"));
    json_object_set_new (out, "models", s_json_copy (key, "models"));
    json_object_set_new (out, "rpm", s_json_copy (key, "rpm"));
    json_object_set_new (out, "tpm", s_json_copy (key, "tpm"));
    json_t *budget = json_object_get (key, "budget_usd");
    json_object_set_new (out, "budget_usd",
                         json_is_number (budget) ? json_real (json_number_value (budget))
                                                 : json_null ());
    json_object_set_new (out, "created_at", s_json_time (key, "created_at"));
    json_object_set_new (out, "rotated_at", s_json_time (key, "rotated_at"));
    return out;
}

//  Prints KEY as text: one "field: value" line each, for the fields that
//  are set (budget_usd with the schema's four decimals).
static void
s_key_text (const json_t *key, const char *tenant_name)
{
    json_t *out = s_key_json (key, tenant_name, NULL);
    static const struct {
        const char *member;  //  member of s_key_json's object
        const char *label;   //  what the line says
    } fields[] = {{"id", "id"},
                  {"name", "name"},
                  {"prefix", "prefix"},
                  {"tenant_name", "tenant"},
                  {"tenant_id", "tenant id"},
                  {"role", "role"},
                  {"status", "status"},
                  {"expires_at", "expires"},
                  {"revoked_at", "revoked"},
                  {"models", "models"},
                  {"rpm", "rpm"},
                  {"tpm", "tpm"},
                  {"budget_usd", "budget usd"},
                  {"created_at", "created"},
                  {"rotated_at", "rotated"}};
    for (size_t i = 0; out && i < sizeof fields / sizeof fields[0]; i++) {
        json_t *value = json_object_get (out, fields[i].member);
        if (json_is_string (value))
            printf ("  %-11s %s\n", fields[i].label, json_string_value (value));
        else if (json_is_integer (value))
            printf ("  %-11s %" JSON_INTEGER_FORMAT "\n", fields[i].label,
                    json_integer_value (value));
        else if (json_is_real (value))
            printf ("  %-11s %.4f\n", fields[i].label, json_real_value (value));
        else if (json_is_array (value)) {
            char *text = json_dumps (value, JSON_COMPACT);
            if (text)
                printf ("  %-11s %s\n", fields[i].label, text);
            free (text);
        }
    }
    json_decref (out);
}

//  Prints a key's new SECRET (with KEY of tenant TENANT_NAME) once, and
//  warns on stderr that it will not be shown again. Returns the exit code.
static int
s_print_secret (s_cli_t *self, const json_t *key, const char *tenant_name, const char *secret,
                const char *what)
{
    int rc = 0;
    if (self->json)
        rc = s_print_json (s_key_json (key, tenant_name, secret), true);
    else {
        printf ("%s\n", what);
        s_key_text (key, tenant_name);
        printf ("\n  %s\n\n", secret);
        rc = fflush (stdout) == 0 ? 0 : s_fail ("cannot write the output: %s", strerror (errno));
    }
    fprintf (stderr,
             "aigw: store this key now: it is shown only once and cannot be recovered "
             "(aigw keys rotate %s makes a new one).\n",
             s_member (key, "id"));
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
    //  A taken name is the usual mistake: say so plainly (the statement
    //  would still refuse one that races in).
    const char *look[AIGW_CP_TENANT_LIST_COUNT] = {[AIGW_CP_TENANT_LIST_NAME] = name};
    PGresult *taken = s_query (self, &aigw_cp_sql_tenant_list, look);
    if (!taken)
        return AIGW_OPERATOR_EXIT_ERROR;
    int rows = PQntuples (taken);
    PQclear (taken);
    if (rows)
        return s_fail ("a tenant with that name already exists: '%s'", name);
    json_t *input = json_pack ("{s:s}", "name", name);
    char *text = input ? json_dumps (input, JSON_COMPACT) : NULL;
    json_decref (input);
    if (!text)
        return s_fail ("out of memory");
    const char *params[AIGW_CP_TENANT_CREATE_COUNT] = {[AIGW_CP_TENANT_CREATE_INPUT] = text};
    PGresult *result = s_query (self, &aigw_cp_sql_tenant_create, params);
    free (text);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    json_t *tenant = s_json_cell (result, 0, 0);
    PQclear (result);
    if (!tenant)
        return s_fail ("the tenant was not created");
    char created[AIGW_OPERATOR_TIME_MAX];
    s_seconds (s_member (tenant, "created_at"), created);
    int rc = 0;
    if (self->json)
        rc = s_print_json (s_tenant_json (tenant, created), false);
    else
        printf ("created tenant\n  id          %s\n  name        %s\n  created     %s\n",
                s_member (tenant, "id"), s_member (tenant, "name"), created);
    json_decref (tenant);
    return rc;
}

//  aigw tenants list
static int
s_cmd_tenants_list (s_cli_t *self, s_args_t *args)
{
    PGresult *result = s_tenants (self);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    json_t *data = json_array ();
    if (!self->json)
        printf ("%-36s  %-20s  %s\n", "ID", "CREATED", "NAME");
    for (int row = 0; data && row < PQntuples (result); row++) {
        json_t *tenant = s_json_cell (result, row, 0);
        char created[AIGW_OPERATOR_TIME_MAX];
        s_seconds (s_member (tenant, "created_at"), created);
        if (self->json)
            json_array_append_new (data, s_tenant_json (tenant, created));
        else
            printf ("%-36s  %-20s  %s\n", s_member (tenant, "id"), created,
                    s_member (tenant, "name"));
        json_decref (tenant);
    }
    PQclear (result);
    return s_print_list (self, data);
}

//  aigw keys create
static int
s_cmd_keys_create (s_cli_t *self, s_args_t *args)
{
    const char *role = args->role ? args->role : AIGW_DEFAULT_ROLE;
    json_t *tenant = s_find_tenant (self, args->tenant);
    if (!tenant)
        return AIGW_OPERATOR_EXIT_ERROR;
    int rc = s_check_role (self, role);
    if (rc) {
        json_decref (tenant);
        return rc;
    }
    //  --expires, --models, --rpm, --tpm and --budget-usd were checked and
    //  normalized by s_validate; the statement casts the text members.
    json_t *input = json_pack ("{s:O, s:s, s:s}", "tenant_id", json_object_get (tenant, "id"),
                               "name", args->name, "role", role);
    if (input && args->expires)
        json_object_set_new (input, "expires_at", json_string (args->expires_utc));
    if (input && args->models_json)
        json_object_set_new (input, "models", json_loads (args->models_json, 0, NULL));
    if (input && args->rpm)
        json_object_set_new (input, "rpm", json_string (args->rpm));
    if (input && args->tpm)
        json_object_set_new (input, "tpm", json_string (args->tpm));
    if (input && args->budget)
        json_object_set_new (input, "budget_usd", json_string (args->budget));
    char *text = input ? json_dumps (input, JSON_COMPACT) : NULL;
    json_decref (input);
    char secret[AIGW_KEY_SECRET_LEN + 1];
    char prefix[AIGW_KEY_PREFIX_LEN + 1];
    char hash[AIGW_KEY_HASH_HEX_LEN + 1];
    if (!text)
        rc = s_fail ("out of memory");
    else if (aigw_keys_generate (secret, prefix))
        rc = s_fail ("cannot generate a key: the system's random generator failed");
    if (rc) {
        free (text);
        json_decref (tenant);
        return rc;
    }
    aigw_keys_hash_hex (secret, hash);
    const char *params[AIGW_CP_KEY_CREATE_COUNT] = {[AIGW_CP_KEY_CREATE_INPUT] = text,
                                                    [AIGW_CP_KEY_CREATE_HASH] = hash,
                                                    [AIGW_CP_KEY_CREATE_PREFIX] = prefix};
    PGresult *result = s_query (self, &aigw_cp_sql_key_create, params);
    OPENSSL_cleanse (hash, sizeof hash);
    free (text);
    //  Columns: tenant found, role found, granted, the key.
    json_t *key = result ? s_json_cell (result, 0, 3) : NULL;
    if (key)
        rc = s_print_secret (self, key, s_member (tenant, "name"), secret, "created key");
    else
        rc = result ? s_fail ("the key was not created") : AIGW_OPERATOR_EXIT_ERROR;
    OPENSSL_cleanse (secret, sizeof secret);
    json_decref (key);
    json_decref (tenant);
    PQclear (result);
    return rc;
}

//  aigw keys list [--tenant ID_OR_NAME]
static int
s_cmd_keys_list (s_cli_t *self, s_args_t *args)
{
    json_t *tenant = NULL;
    if (args->tenant && !(tenant = s_find_tenant (self, args->tenant)))
        return AIGW_OPERATOR_EXIT_ERROR;
    const char *params[AIGW_CP_KEY_LIST_COUNT]
        = {[AIGW_CP_KEY_LIST_TENANT] = s_member (tenant, "id")};
    PGresult *result = s_query (self, &aigw_cp_sql_key_list, params);
    json_decref (tenant);
    //  Tenant names, by id, for the keys' lines.
    PGresult *tenants = result ? s_tenants (self) : NULL;
    if (!tenants) {
        PQclear (result);
        return AIGW_OPERATOR_EXIT_ERROR;
    }
    json_t *names = json_object ();
    for (int row = 0; names && row < PQntuples (tenants); row++) {
        json_t *each = s_json_cell (tenants, row, 0);
        if (s_member (each, "id"))
            json_object_set (names, s_member (each, "id"), json_object_get (each, "name"));
        json_decref (each);
    }
    PQclear (tenants);
    json_t *data = json_array ();
    if (!self->json)
        printf ("%-36s  %-12s  %-12s  %-7s  %-20s  %s\n", "ID", "PREFIX", "ROLE", "STATUS",
                "CREATED", "TENANT / NAME");
    for (int row = 0; data && names && row < PQntuples (result); row++) {
        json_t *key = s_json_cell (result, row, 0);
        const char *tenant_id = s_member (key, "tenant_id");
        const char *tenant_name
            = tenant_id ? json_string_value (json_object_get (names, tenant_id)) : NULL;
        char created[AIGW_OPERATOR_TIME_MAX];
        if (self->json)
            json_array_append_new (data, s_key_json (key, tenant_name, NULL));
        else
            printf ("%-36s  %-12s  %-12s  %-7s  %-20s  %s / %s\n", s_member (key, "id"),
                    s_member (key, "prefix"), s_member (key, "role"), s_member (key, "status"),
                    s_seconds (s_member (key, "created_at"), created),
                    tenant_name ? tenant_name : "", s_member (key, "name"));
        json_decref (key);
    }
    PQclear (result);
    json_decref (names);
    return s_print_list (self, data);
}

//  Key ID as the statements show it, or NULL after printing that there is
//  none (or the error). Caller owns the result.
static json_t *
s_find_key (s_cli_t *self, const char *id)
{
    const char *params[AIGW_CP_KEY_GET_COUNT] = {[AIGW_CP_KEY_GET_ID] = id};
    PGresult *result = s_query (self, &aigw_cp_sql_key_get, params);
    if (!result)
        return NULL;
    json_t *key = s_json_cell (result, 0, 0);
    PQclear (result);
    if (!key)
        s_fail ("no key with id %s (aigw keys list shows them)", id);
    return key;
}

//  aigw keys revoke ID
static int
s_cmd_keys_revoke (s_cli_t *self, s_args_t *args)
{
    const char *id = args->args[0];
    json_t *key = s_find_key (self, id);
    if (!key)
        return AIGW_OPERATOR_EXIT_ERROR;
    char revoked[AIGW_OPERATOR_TIME_MAX];
    if (json_is_true (json_object_get (key, "revoked"))) {
        printf ("key %s was already revoked at %s\n", id,
                s_seconds (s_member (key, "revoked_at"), revoked));
        json_decref (key);
        return 0;
    }
    json_decref (key);
    const char *params[AIGW_CP_KEY_UPDATE_COUNT]
        = {[AIGW_CP_KEY_UPDATE_ID] = id,
           [AIGW_CP_KEY_UPDATE_ACTION] = "keys.revoke",
           [AIGW_CP_KEY_UPDATE_INPUT] = "{\"revoked\": true}"};
    PGresult *result = s_query (self, &aigw_cp_sql_key_update, params);
    if (!result)
        return AIGW_OPERATOR_EXIT_ERROR;
    //  Columns: found, role found, allowed, the key.
    key = s_json_cell (result, 0, 3);
    PQclear (result);
    if (!key)
        return s_fail ("no key with id %s (aigw keys list shows them)", id);
    printf ("revoked key %s (%s) at %s\n", id, s_member (key, "name"),
            s_seconds (s_member (key, "revoked_at"), revoked));
    json_decref (key);
    return 0;
}

//  aigw keys rotate ID
static int
s_cmd_keys_rotate (s_cli_t *self, s_args_t *args)
{
    const char *id = args->args[0];
    char secret[AIGW_KEY_SECRET_LEN + 1];
    char prefix[AIGW_KEY_PREFIX_LEN + 1];
    char hash[AIGW_KEY_HASH_HEX_LEN + 1];
    if (aigw_keys_generate (secret, prefix))
        return s_fail ("cannot generate a key: the system's random generator failed");
    aigw_keys_hash_hex (secret, hash);
    const char *params[AIGW_CP_KEY_ROTATE_COUNT] = {[AIGW_CP_KEY_ROTATE_ID] = id,
                                                    [AIGW_CP_KEY_ROTATE_HASH] = hash,
                                                    [AIGW_CP_KEY_ROTATE_PREFIX] = prefix};
    PGresult *result = s_query (self, &aigw_cp_sql_key_rotate, params);
    OPENSSL_cleanse (hash, sizeof hash);
    int rc = 0;
    json_t *key = NULL, *tenant = NULL;
    //  Columns: found, allowed, revoked, the key.
    if (!result)
        rc = AIGW_OPERATOR_EXIT_ERROR;
    else if (s_count (result, 0) == 0)
        rc = s_fail ("no key with id %s (aigw keys list shows them)", id);
    else if (s_count (result, 2) > 0)
        rc = s_fail ("key %s is revoked: create a new key instead", id);
    else if (!(key = s_json_cell (result, 0, 3)))
        rc = s_fail ("the key was not rotated");
    else if (!(tenant = s_find_tenant (self, s_member (key, "tenant_id"))))
        rc = AIGW_OPERATOR_EXIT_ERROR;
    else
        rc = s_print_secret (self, key, s_member (tenant, "name"), secret,
                             "rotated key: the old secret no longer works");
    OPENSSL_cleanse (secret, sizeof secret);
    json_decref (tenant);
    json_decref (key);
    PQclear (result);
    return rc;
}

//  Statements of secrets rotate. Every stored api_key, with its row's id.
static const char S_SQL_SECRETS_READ[]
    = "SELECT id::text, api_key FROM model_deployments WHERE api_key IS NOT NULL ORDER BY id";
//  $1 id, $2 the value read, $3 the new value, $4 actor: rewritten only if
//  unchanged since it was read (an admin write meanwhile wins), audited
//  without either value.
static const char S_SQL_SECRETS_WRITE[]
    = "WITH changed AS (UPDATE model_deployments SET api_key = $3"
      " WHERE id = $1::uuid AND api_key = $2 RETURNING id, model_id),"
      " audit AS (" AIGW_CP_SQL_AUDIT_INSERT "SELECT 'cli', $4, NULL, 'secrets.rotate',"
      " 'model_deployment', c.id::text, NULL, jsonb_build_object ('model_id', c.model_id)"
      " FROM changed c) SELECT count (*) FROM changed";

//  aigw secrets rotate
static int
s_cmd_secrets_rotate (s_cli_t *self, s_args_t *args)
{
    char err[AIGW_DB_ERR_MAX];
    aigw_secret_t *ring = aigw_secret_new (self->config, err, sizeof err);
    if (!ring)
        return s_fail ("secrets rotate: %s", err);
    if (!aigw_secret_ready (ring)) {
        aigw_secret_destroy (&ring);
        return s_fail ("secrets rotate: no secret key is configured: set %s (the new key) and "
                       "AIGW_SECRET_PREVIOUS_KEYS (the old ones)",
                       AIGW_SECRET_ENV);
    }
    const char *current = aigw_secret_current_id (ring);
    PGresult *rows
        = aigw_db_exec (self->conn, S_SQL_SECRETS_READ, 0, NULL, self->timeout_ms, err, sizeof err);
    if (!rows) {
        aigw_secret_destroy (&ring);
        return s_fail ("secrets rotate: %s", err);
    }
    int sealed = 0, kept = 0, failed = 0, changed = 0;
    for (int i = 0; i < PQntuples (rows) && failed >= 0; i++) {
        const char *id = PQgetvalue (rows, i, 0);
        const char *value = PQgetvalue (rows, i, 1);
        char kid[AIGW_SECRET_KID_MAX + 1] = "";
        if (aigw_secret_is_sealed (value) && aigw_secret_key_id (value, kid, sizeof kid) == 0
            && strcmp (kid, current) == 0) {
            kept++;
            continue;
        }
        char aad[AIGW_MODELS_AAD_MAX], problem[256];
        aigw_models_key_aad (id, aad, sizeof aad);
        char *plain = aigw_secret_is_sealed (value)
                          ? aigw_secret_open (ring, value, aad, problem, sizeof problem)
                          : strdup (value);
        if (!plain) {
            fprintf (stderr, "aigw: secrets rotate: deployment %s: %s\n", id, problem);
            failed++;
            continue;
        }
        char *fresh = aigw_secret_seal (ring, plain, aad, problem, sizeof problem);
        aigw_config_string_free (&plain);
        if (!fresh) {
            fprintf (stderr, "aigw: secrets rotate: deployment %s: %s\n", id, problem);
            failed++;
            continue;
        }
        const char *params[4] = {id, value, fresh, self->actor};
        PGresult *result = aigw_db_exec (self->conn, S_SQL_SECRETS_WRITE, 4, params,
                                         self->timeout_ms, err, sizeof err);
        free (fresh);
        if (!result) {
            fprintf (stderr, "aigw: secrets rotate: %s\n", err);
            failed = -1;  //  the database is gone: stop
            break;
        }
        if (s_count (result, 0) > 0)
            sealed++;
        else
            changed++;
        PQclear (result);
    }
    PQclear (rows);
    printf ("secrets rotate: %d value(s) encrypted under key %s, %d already were, %d changed "
            "meanwhile (left as written)%s\n",
            sealed, current, kept, changed, failed ? ", some could not be opened (see above)" : "");
    aigw_secret_destroy (&ring);
    return failed ? AIGW_OPERATOR_EXIT_ERROR : 0;
}

//  Every command: group, name, options, positional arguments, body.
static const s_command_t s_commands[] = {
    {"migrate", NULL, S_OPT_CONFIG | S_OPT_HELP, 0, s_cmd_migrate},
    {"tenants", "create", S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP, 1, s_cmd_tenants_create},
    {"tenants", "list", S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP, 0, s_cmd_tenants_list},
    {"keys", "create",
     S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP | S_OPT_TENANT | S_OPT_NAME | S_OPT_ROLE | S_OPT_EXPIRES
         | S_OPT_MODELS | S_OPT_RPM | S_OPT_TPM | S_OPT_BUDGET,
     0, s_cmd_keys_create},
    {"keys", "list", S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP | S_OPT_TENANT, 0, s_cmd_keys_list},
    {"keys", "revoke", S_OPT_CONFIG | S_OPT_HELP, 1, s_cmd_keys_revoke},
    {"keys", "rotate", S_OPT_CONFIG | S_OPT_JSON | S_OPT_HELP, 1, s_cmd_keys_rotate},
    {"secrets", "rotate", S_OPT_CONFIG | S_OPT_HELP, 0, s_cmd_secrets_rotate},
};

//  --------------------------------------------------------------------------
//  Command line

//  Every option: its name, bit, and whether it takes a value.
static const struct {
    const char *name;  //  long option name
    unsigned bit;      //  S_OPT_*
    bool value;        //  takes an argument
} s_options[] = {
    {"config", S_OPT_CONFIG, true}, {"json", S_OPT_JSON, false},
    {"tenant", S_OPT_TENANT, true}, {"name", S_OPT_NAME, true},
    {"role", S_OPT_ROLE, true},     {"expires", S_OPT_EXPIRES, true},
    {"models", S_OPT_MODELS, true}, {"rpm", S_OPT_RPM, true},
    {"tpm", S_OPT_TPM, true},       {"budget-usd", S_OPT_BUDGET, true},
    {"help", S_OPT_HELP, false},
};
#define S_OPTION_COUNT (sizeof s_options / sizeof s_options[0])

//  Parses ARGV (ARGV[0] is the command's last word) for COMMAND into ARGS.
//  Returns 0, or the usage exit code after printing what is wrong.
static int
s_parse (const s_command_t *command, const char *label, const char *usage, int argc, char **argv,
         s_args_t *args)
{
    struct option longs[S_OPTION_COUNT + 1];
    int count = 0;
    for (size_t i = 0; i < S_OPTION_COUNT; i++)
        if (command->options & s_options[i].bit)
            longs[count++] = (struct option){s_options[i].name,
                                             s_options[i].value ? required_argument : no_argument,
                                             NULL, (int) i};
    longs[count] = (struct option){NULL, 0, NULL, 0};
    const char **fields[]
        = {&args->config, NULL,       &args->tenant, &args->name,   &args->role, &args->expires,
           &args->models, &args->rpm, &args->tpm,    &args->budget, NULL};
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
        return s_usage_error (label, usage,
                              "ID: expected a key id (a UUID, as aigw keys list "
                              "shows), got '%s'",
                              args->args[0]);
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
        return s_usage_error (label, usage,
                              "--role: '%s' is not a role name (lowercase "
                              "letters, digits, _ and -)",
                              args->role);
    if (args->expires) {
        time_t when;
        if (s_parse_rfc3339 (args->expires, &when, args->expires_utc, sizeof args->expires_utc))
            return s_usage_error (label, usage,
                                  "--expires: expected an RFC 3339 time such as "
                                  "2030-01-31T00:00:00Z, got '%s'",
                                  args->expires);
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
        return s_usage_error (label, usage,
                              "--budget-usd: expected an amount such as 25 or "
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
               || strcmp (command, "keys") == 0 || strcmp (command, "secrets") == 0);
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
    if (strcmp (command, "secrets") == 0)
        return s_help_secrets;
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
