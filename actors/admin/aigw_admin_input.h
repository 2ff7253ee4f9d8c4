/*  aigw_admin_input: what the admin API accepts, checked before anything
    reaches the database. Pure functions, no I/O: request bodies against a
    field table (types, ranges, unknown fields), query strings, ids,
    RFC 3339 times, the opaque list cursor and permission checks. Every
    refusal fills an aigw_admin_error_t with the SPEC's error fields, naming
    the offending field in param. */
#ifndef AIGW_ADMIN_INPUT_H_INCLUDED
#define AIGW_ADMIN_INPUT_H_INCLUDED

#include "aigw_limits.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Longest tenant or key name, in characters (the schema's CHECK).
#define AIGW_ADMIN_NAME_MAX 200
//  Most entries in a key's models list, and the longest model name.
#define AIGW_ADMIN_MODELS_MAX     256
#define AIGW_ADMIN_MODEL_NAME_MAX 200
//  Largest metadata object, serialized.
#define AIGW_ADMIN_METADATA_MAX_BYTES (16 * 1024)
//  Deepest metadata nesting.
#define AIGW_ADMIN_METADATA_DEPTH_MAX 16
//  Largest rpm / tpm (the columns are 32-bit integers).
#define AIGW_ADMIN_RATE_MAX 2147483647LL
//  Largest budget_usd: a budget's nano-USD fit in 63 bits (aigw_limits);
//  numeric(14, 4) holds more.
#define AIGW_ADMIN_BUDGET_MAX AIGW_LIMITS_USD_MAX
//  Most parameters in one query string, and the longest cursor.
#define AIGW_ADMIN_QUERY_MAX_PARAMS 32
#define AIGW_ADMIN_CURSOR_MAX       256
//  List page sizes.
#define AIGW_ADMIN_LIMIT_DEFAULT 50
#define AIGW_ADMIN_LIMIT_MAX     200
//  Buffer sizes: a UUID's text with its NUL; an RFC 3339 time with
//  microseconds and its NUL.
#define AIGW_ADMIN_UUID_SIZE 37
#define AIGW_ADMIN_TIME_SIZE 40

//  One refusal, in the SPEC's error shape.
typedef struct {
    int status;                         //  HTTP status
    const char *type;                   //  e.g. invalid_request_error (static)
    const char *code;                   //  e.g. invalid_field (static)
    char param[AIGW_LIMITS_PARAM_MAX];  //  offending field, "" for none
    char message[256];                  //  human text, never a secret
} aigw_admin_error_t;

//  Kinds of value a body field may hold.
typedef enum {
    AIGW_ADMIN_FIELD_NAME,     //  string, 1..AIGW_ADMIN_NAME_MAX characters
    AIGW_ADMIN_FIELD_UUID,     //  string, a UUID
    AIGW_ADMIN_FIELD_ROLE,     //  string, a role name's syntax
    AIGW_ADMIN_FIELD_TIME,     //  RFC 3339 string, or null
    AIGW_ADMIN_FIELD_MODELS,   //  array of model names, or null
    AIGW_ADMIN_FIELD_RATE,     //  integer 1..AIGW_ADMIN_RATE_MAX, or null
    AIGW_ADMIN_FIELD_MONEY,    //  number 0..AIGW_ADMIN_BUDGET_MAX, or null
    AIGW_ADMIN_FIELD_OBJECT,   //  JSON object (metadata), size and depth capped
    AIGW_ADMIN_FIELD_TRUE,     //  the literal true
    AIGW_ADMIN_FIELD_BOOL,     //  true or false
    AIGW_ADMIN_FIELD_SETTING,  //  true, false, or null (follow the level above)
    AIGW_ADMIN_FIELD_LIMITS    //  a limits object (aigw_limits_check), or null
} aigw_admin_field_type_t;

//  One field a body may hold.
typedef struct {
    const char *name;              //  JSON member name
    aigw_admin_field_type_t type;  //  what it must hold
    bool required;                 //  missing_field when absent
} aigw_admin_field_t;

//  Fill ERR as a 400 invalid_request_error with CODE, PARAM (may be NULL)
//  and a printf-style message.
void aigw_admin_error_set (aigw_admin_error_t *err, int status, const char *type, const char *code,
                           const char *param, const char *format, ...)
    __attribute__ ((format (printf, 6, 7)));

//  Parse a request body: LEN bytes (0 means {}), which must be one JSON
//  object with no duplicate member names. Returns a new reference the caller
//  owns, or NULL with ERR filled (invalid_json).
json_t *aigw_admin_input_body (const char *body, size_t len, aigw_admin_error_t *err);

//  Check BODY against FIELDS (COUNT entries): every member known, every
//  required one present, every value of its type and range. Returns 0, or
//  -1 with ERR filled (missing_field / invalid_field, param = the field).
int aigw_admin_input_check (json_t *body, const aigw_admin_field_t *fields, size_t count,
                            aigw_admin_error_t *err);

//  Ready the limits of a checked key or tenant BODY for the database: its
//  `limits` without null members ({} for null). For a key (KEY), its
//  top-level rpm, tpm and budget_usd must agree with limits.rpm,
//  limits.tpm and a month's limits.budget when both are given. Returns 0,
//  or -1 with ERR filled (invalid_field naming the top-level field).
int aigw_admin_input_limits (json_t *body, bool key, aigw_admin_error_t *err);

//  The limits a checked, readied key BODY sets, as one limits object: its
//  `limits`, with rpm, tpm and budget_usd (a month's budget) folded in.
//  Caller owns it; NULL on allocation failure.
json_t *aigw_admin_input_key_limits (json_t *body);

//  Write Unix ms MS as RFC 3339 in UTC with milliseconds into OUT.
void aigw_admin_time_format (int64_t ms, char out[AIGW_ADMIN_TIME_SIZE]);

//  The opaque list cursor: base64url of "TIME|ID", ID a UUID or a serial
//  (1 to 18 digits). Returns a string the caller frees, or NULL on
//  allocation failure.
char *aigw_admin_cursor_encode (const char *time, const char *id);

//  Decode CURSOR into TIME and ID (a UUID or a serial: the caller checks
//  which it expects). Returns 0, or -1 when it is not one this API issued.
int aigw_admin_cursor_decode (const char *cursor, char time[AIGW_ADMIN_TIME_SIZE],
                              char id[AIGW_ADMIN_UUID_SIZE]);

//  A parsed query string: names and values, percent-decoded.
typedef struct {
    char *names[AIGW_ADMIN_QUERY_MAX_PARAMS];   //  parameter names
    char *values[AIGW_ADMIN_QUERY_MAX_PARAMS];  //  their values ("" if none)
    int count;                                  //  entries used
} aigw_admin_query_t;

//  Parse QUERY (may be NULL) into SELF, accepting only the names in ALLOWED
//  (NULL-terminated). Returns 0, or -1 with ERR filled (unknown, repeated or
//  malformed parameter); SELF is then empty. Free with _query_free.
int aigw_admin_query_parse (aigw_admin_query_t *self, const char *query, const char *const *allowed,
                            aigw_admin_error_t *err);

//  Value of NAME, or NULL when absent. Owned by SELF.
const char *aigw_admin_query_get (const aigw_admin_query_t *self, const char *name);

//  Free what _query_parse allocated; SELF is then empty.
void aigw_admin_query_free (aigw_admin_query_t *self);

//  Read the page size from ?limit= (default AIGW_ADMIN_LIMIT_DEFAULT).
//  Returns 0, or -1 with ERR filled.
int aigw_admin_query_limit (const aigw_admin_query_t *self, int *limit, aigw_admin_error_t *err);

//  True when PERMISSIONS (comma-separated, "*" = all, may be NULL) holds
//  NEEDED.
bool aigw_admin_permitted (const char *permissions, const char *needed);

//  PERMISSIONS as a clean comma-separated list (spaces and empty entries
//  dropped), for the database. Caller frees; NULL on allocation failure.
char *aigw_admin_permissions_normalize (const char *permissions);

void aigw_admin_input_test (bool verbose);

#endif
