/*  aigw_admin_input: validation of admin API input; pure functions. */
#include "aigw_admin_input.h"
#include "aigw_hex.h"
#include "aigw_text.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Longest role name (the schema's CHECK: ^[a-z][a-z0-9_-]{0,62}$).
#define S_ROLE_MAX 63

void
aigw_admin_error_set (aigw_admin_error_t *err, int status, const char *type, const char *code,
                      const char *param, const char *format, ...)
{
    //  Static TYPE and CODE are kept by pointer; PARAM and the message are
    //  copied (truncated to fit).
    err->status = status;
    err->type = type;
    err->code = code;
    snprintf (err->param, sizeof err->param, "%s", param ? param : "");
    va_list args;
    va_start (args, format);
    vsnprintf (err->message, sizeof err->message, format, args);
    va_end (args);
}

#define S_INVALID(err, code, param, ...) \
    aigw_admin_error_set ((err), 400, "invalid_request_error", (code), (param), __VA_ARGS__)

json_t *
aigw_admin_input_body (const char *body, size_t len, aigw_admin_error_t *err)
{
    if (!body || len == 0)
        return json_object ();
    json_error_t error;
    json_t *root = json_loadb (body, len, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        S_INVALID (err, "invalid_json", NULL,
                   "The body is not valid JSON: %.160s (line %d, column %d).", error.text,
                   error.line, error.column);
        return NULL;
    }
    if (!json_is_object (root)) {
        json_decref (root);
        S_INVALID (err, "invalid_json", NULL, "The body must be a JSON object.");
        return NULL;
    }
    return root;
}

//  True when JSON nests deeper than LIMIT levels.
static bool
s_too_deep (json_t *json, int limit)
{
    if (limit < 0)
        return true;
    if (json_is_object (json)) {
        const char *key;
        json_t *value;
        json_object_foreach (json, key, value)
            if (s_too_deep (value, limit - 1))
                return true;
    }
    else if (json_is_array (json)) {
        size_t index;
        json_t *value;
        json_array_foreach (json, index, value)
            if (s_too_deep (value, limit - 1))
                return true;
    }
    return false;
}

static bool
s_role_valid (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > S_ROLE_MAX || !(text[0] >= 'a' && text[0] <= 'z'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

//  Check one field's VALUE against its type. Returns 0 or -1 with ERR.
static int
s_check_field (const aigw_admin_field_t *field, json_t *value, aigw_admin_error_t *err)
{
    const char *name = field->name;
    switch (field->type) {
        case AIGW_ADMIN_FIELD_NAME: {
            if (!json_is_string (value)) {
                S_INVALID (err, "invalid_field", name, "'%s' must be a string.", name);
                return -1;
            }
            const char *text = json_string_value (value);
            size_t chars = aigw_text_utf8_length (text, strlen (text));
            if (chars == 0 || chars > AIGW_ADMIN_NAME_MAX) {
                S_INVALID (err, "invalid_field", name, "'%s' must be 1 to %d characters long.",
                           name, AIGW_ADMIN_NAME_MAX);
                return -1;
            }
            return 0;
        }
        case AIGW_ADMIN_FIELD_UUID:
            if (!json_is_string (value) || !aigw_text_uuid_valid (json_string_value (value))) {
                S_INVALID (err, "invalid_field", name, "'%s' must be a UUID.", name);
                return -1;
            }
            return 0;
        case AIGW_ADMIN_FIELD_ROLE:
            if (!json_is_string (value) || !s_role_valid (json_string_value (value))) {
                S_INVALID (err, "invalid_field", name, "'%s' is not a known role.", name);
                return -1;
            }
            return 0;
        case AIGW_ADMIN_FIELD_TIME:
            if (json_is_null (value))
                return 0;
            if (!json_is_string (value) || aigw_text_time_parse (json_string_value (value), NULL)) {
                S_INVALID (err, "invalid_field", name,
                           "'%s' must be an RFC 3339 date-time such as "
                           "2030-01-31T12:00:00Z, or null.",
                           name);
                return -1;
            }
            return 0;
        case AIGW_ADMIN_FIELD_MODELS: {
            if (json_is_null (value))
                return 0;
            if (!json_is_array (value) || json_array_size (value) > AIGW_ADMIN_MODELS_MAX) {
                S_INVALID (err, "invalid_field", name,
                           "'%s' must be an array of at most %d model names, or null.", name,
                           AIGW_ADMIN_MODELS_MAX);
                return -1;
            }
            size_t index;
            json_t *item;
            json_array_foreach (value, index, item) {
                if (!json_is_string (item) || json_string_length (item) == 0
                    || aigw_text_utf8_length (json_string_value (item),
                                              strlen (json_string_value (item)))
                           > AIGW_ADMIN_MODEL_NAME_MAX) {
                    S_INVALID (err, "invalid_field", name,
                               "'%s' must hold model names of 1 to %d characters.", name,
                               AIGW_ADMIN_MODEL_NAME_MAX);
                    return -1;
                }
            }
            return 0;
        }
        case AIGW_ADMIN_FIELD_RATE:
            if (json_is_null (value))
                return 0;
            if (!json_is_integer (value) || json_integer_value (value) < 1
                || json_integer_value (value) > AIGW_ADMIN_RATE_MAX) {
                S_INVALID (err, "invalid_field", name,
                           "'%s' must be an integer from 1 to %lld, or null.", name,
                           AIGW_ADMIN_RATE_MAX);
                return -1;
            }
            return 0;
        case AIGW_ADMIN_FIELD_MONEY: {
            if (json_is_null (value))
                return 0;
            double amount = json_is_number (value) ? json_number_value (value) : -1;
            if (!json_is_number (value) || !isfinite (amount) || amount < 0
                || amount > AIGW_ADMIN_BUDGET_MAX) {
                S_INVALID (err, "invalid_field", name,
                           "'%s' must be a number from 0 to %.0f, or null.", name,
                           AIGW_ADMIN_BUDGET_MAX);
                return -1;
            }
            return 0;
        }
        case AIGW_ADMIN_FIELD_OBJECT: {
            if (!json_is_object (value)) {
                S_INVALID (err, "invalid_field", name, "'%s' must be a JSON object.", name);
                return -1;
            }
            if (s_too_deep (value, AIGW_ADMIN_METADATA_DEPTH_MAX)) {
                S_INVALID (err, "invalid_field", name, "'%s' nests deeper than %d levels.", name,
                           AIGW_ADMIN_METADATA_DEPTH_MAX);
                return -1;
            }
            char *text = json_dumps (value, JSON_COMPACT);
            size_t size = text ? strlen (text) : SIZE_MAX;
            free (text);
            if (size > AIGW_ADMIN_METADATA_MAX_BYTES) {
                S_INVALID (err, "invalid_field", name, "'%s' is larger than %d bytes.", name,
                           AIGW_ADMIN_METADATA_MAX_BYTES);
                return -1;
            }
            return 0;
        }
        case AIGW_ADMIN_FIELD_TRUE:
            if (!json_is_true (value)) {
                S_INVALID (err, "invalid_field", name, "'%s' accepts only true.", name);
                return -1;
            }
            return 0;
        case AIGW_ADMIN_FIELD_BOOL:
            if (!json_is_boolean (value)) {
                S_INVALID (err, "invalid_field", name, "'%s' must be true or false.", name);
                return -1;
            }
            return 0;
        case AIGW_ADMIN_FIELD_SETTING:
            if (!json_is_boolean (value) && !json_is_null (value)) {
                S_INVALID (err, "invalid_field", name, "'%s' must be true, false or null.", name);
                return -1;
            }
            return 0;
        case AIGW_ADMIN_FIELD_LIMITS: {
            aigw_limits_error_t limits_err;
            if (aigw_limits_check (value, name, &limits_err)) {
                S_INVALID (err, "invalid_field", limits_err.param, "%s", limits_err.message);
                return -1;
            }
            return 0;
        }
    }
    S_INVALID (err, "invalid_field", name, "'%s' is not accepted.", name);
    return -1;
}

int
aigw_admin_input_check (json_t *body, const aigw_admin_field_t *fields, size_t count,
                        aigw_admin_error_t *err)
{
    const char *key;
    json_t *value;
    json_object_foreach (body, key, value) {
        size_t i;
        for (i = 0; i < count; i++)
            if (strcmp (key, fields[i].name) == 0)
                break;
        if (i == count) {
            //  The name may hold anything: show it only when it is short
            //  and printable, and never in param unless it fits.
            S_INVALID (err, "invalid_field", strlen (key) < sizeof err->param ? key : NULL,
                       "Unknown field '%.60s'.", key);
            return -1;
        }
        if (s_check_field (&fields[i], value, err))
            return -1;
    }
    for (size_t i = 0; i < count; i++)
        if (fields[i].required && !json_object_get (body, fields[i].name)) {
            S_INVALID (err, "missing_field", fields[i].name, "'%s' is required.", fields[i].name);
            return -1;
        }
    return 0;
}

int
aigw_admin_input_limits (json_t *body, bool key, aigw_admin_error_t *err)
{
    json_t *given = json_object_get (body, "limits");
    if (!given)
        return 0;
    json_t *limits = aigw_limits_clean (given);
    if (!limits || json_object_set_new (body, "limits", limits)) {
        aigw_admin_error_set (err, 500, "server_error", "internal_error", NULL, "Out of memory.");
        return -1;
    }
    if (!key)
        return 0;
    //  The SPEC's fields and their place in limits: one value, two names.
    static const char *const pairs[][2] = {{"rpm", "rpm"}, {"tpm", "tpm"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        json_t *field = json_object_get (body, pairs[i][0]);
        json_t *member = json_object_get (limits, pairs[i][1]);
        if (field && member && !json_equal (field, member)) {
            S_INVALID (err, "invalid_field", pairs[i][0],
                       "'%s' and 'limits.%s' differ: give one, or the same value in both.",
                       pairs[i][0], pairs[i][1]);
            return -1;
        }
    }
    json_t *usd = json_object_get (body, "budget_usd");
    json_t *budget = json_object_get (limits, "budget");
    if (usd && budget) {
        const char *period = json_string_value (json_object_get (budget, "period"));
        bool month = !period || strcmp (period, "month") == 0;
        if (json_is_null (usd) || !month
            || fabs (json_number_value (usd) - json_number_value (json_object_get (budget, "usd")))
                   > 1e-9) {
            S_INVALID (err, "invalid_field", "budget_usd",
                       "'budget_usd' and 'limits.budget' differ: give one, or the same month's "
                       "budget in both.");
            return -1;
        }
    }
    return 0;
}

json_t *
aigw_admin_input_key_limits (json_t *body)
{
    json_t *given = json_object_get (body, "limits");
    json_t *limits = json_is_object (given) ? json_deep_copy (given) : json_object ();
    if (!limits)
        return NULL;
    json_t *rpm = json_object_get (body, "rpm");
    json_t *tpm = json_object_get (body, "tpm");
    json_t *usd = json_object_get (body, "budget_usd");
    if (json_is_integer (rpm))
        json_object_set (limits, "rpm", rpm);
    if (json_is_integer (tpm))
        json_object_set (limits, "tpm", tpm);
    if (json_is_number (usd))
        json_object_set_new (limits, "budget",
                             json_pack ("{s:O,s:s}", "usd", usd, "period", "month"));
    return limits;
}

void
aigw_admin_time_format (int64_t ms, char out[AIGW_ADMIN_TIME_SIZE])
{
    //  Civil from days (Hinnant), floor division for times before 1970.
    int64_t seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int millis = (int) (ms - seconds * 1000);
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rest = seconds - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int day = (int) (doy - (153 * mp + 2) / 5 + 1);
    int month = (int) (mp < 10 ? mp + 3 : mp - 9);
    int64_t year = yoe + era * 400 + (month <= 2);
    snprintf (out, AIGW_ADMIN_TIME_SIZE, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long) year,
              month, day, (int) (rest / 3600), (int) (rest % 3600 / 60), (int) (rest % 60), millis);
}

static const char s_b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
aigw_admin_cursor_encode (const char *time, const char *id)
{
    size_t len = strlen (time) + 1 + strlen (id);
    unsigned char *plain = malloc (len + 1);
    char *out = malloc ((len + 2) / 3 * 4 + 1);
    if (!plain || !out) {
        free (plain);
        free (out);
        return NULL;
    }
    snprintf ((char *) plain, len + 1, "%s|%s", time, id);
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t n = (uint32_t) plain[i] << 16;
        if (i + 1 < len)
            n |= (uint32_t) plain[i + 1] << 8;
        if (i + 2 < len)
            n |= plain[i + 2];
        out[o++] = s_b64url[(n >> 18) & 63];
        out[o++] = s_b64url[(n >> 12) & 63];
        if (i + 1 < len)
            out[o++] = s_b64url[(n >> 6) & 63];
        if (i + 2 < len)
            out[o++] = s_b64url[n & 63];
    }
    out[o] = 0;
    free (plain);
    return out;
}

int
aigw_admin_cursor_decode (const char *cursor, char time[AIGW_ADMIN_TIME_SIZE],
                          char id[AIGW_ADMIN_UUID_SIZE])
{
    size_t len = cursor ? strlen (cursor) : 0;
    if (len == 0 || len > AIGW_ADMIN_CURSOR_MAX || len % 4 == 1)
        return -1;
    char plain[AIGW_ADMIN_CURSOR_MAX];
    size_t o = 0;
    uint32_t bits = 0;
    int have = 0;
    for (size_t i = 0; i < len; i++) {
        const char *at = strchr (s_b64url, cursor[i]);
        if (!at || !cursor[i])
            return -1;
        bits = (bits << 6) | (uint32_t) (at - s_b64url);
        have += 6;
        if (have >= 8) {
            have -= 8;
            plain[o++] = (char) ((bits >> have) & 0xFF);
        }
    }
    plain[o] = 0;
    if (memchr (plain, 0, o))
        return -1;  //  an embedded NUL: not ours
    char *bar = strrchr (plain, '|');
    if (!bar || (size_t) (bar - plain) >= AIGW_ADMIN_TIME_SIZE)
        return -1;
    *bar = 0;
    size_t id_len = strlen (bar + 1);
    bool serial = id_len > 0 && id_len <= 18 && strspn (bar + 1, "0123456789") == id_len;
    if (aigw_text_time_parse (plain, NULL) || !(serial || aigw_text_uuid_valid (bar + 1)))
        return -1;
    memcpy (time, plain, (size_t) (bar - plain) + 1);
    memcpy (id, bar + 1, id_len + 1);
    return 0;
}

//  True when the LEN bytes at TEXT are valid UTF-8 (no overlongs, no
//  surrogates, nothing past U+10FFFF).
static bool
s_utf8_valid (const unsigned char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = text[i];
        size_t extra;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        else if ((c & 0xE0) == 0xC0)
            extra = 1, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            extra = 2, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            extra = 3, cp = c & 0x07;
        else
            return false;
        if (i + extra >= len)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((text[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (text[i + k] & 0x3F);
        }
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000)
            || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += extra + 1;
    }
    return true;
}

//  Percent-decode LEN bytes at TEXT ('+' is a space). Returns a string the
//  caller frees, or NULL when malformed, holding NUL, or not UTF-8.
static char *
s_url_decode (const char *text, size_t len)
{
    char *out = malloc (len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '%') {
            if (i + 2 >= len) {
                free (out);
                return NULL;
            }
            int hi = aigw_hex_digit (text[i + 1]);
            int lo = aigw_hex_digit (text[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free (out);
                return NULL;
            }
            out[o++] = (char) (hi * 16 + lo);
            i += 2;
        }
        else
            out[o++] = text[i] == '+' ? ' ' : text[i];
    }
    out[o] = 0;
    if (!s_utf8_valid ((const unsigned char *) out, o)) {
        free (out);
        return NULL;
    }
    return out;
}

int
aigw_admin_query_parse (aigw_admin_query_t *self, const char *query, const char *const *allowed,
                        aigw_admin_error_t *err)
{
    memset (self, 0, sizeof *self);
    const char *p = query ? query : "";
    while (*p) {
        const char *end = strchr (p, '&');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        if (len > 0) {
            const char *eq = memchr (p, '=', len);
            size_t name_len = eq ? (size_t) (eq - p) : len;
            char *name = s_url_decode (p, name_len);
            char *value = eq ? s_url_decode (eq + 1, len - name_len - 1) : strdup ("");
            if (!name || !value) {
                free (name);
                free (value);
                aigw_admin_query_free (self);
                S_INVALID (err, "invalid_field", NULL,
                           "The query string is malformed (bad percent-encoding or not "
                           "UTF-8).");
                return -1;
            }
            bool known = false;
            for (int i = 0; allowed && allowed[i]; i++)
                if (strcmp (name, allowed[i]) == 0)
                    known = true;
            const char *problem = !known ? "Unknown query parameter '%.60s'."
                                  : aigw_admin_query_get (self, name)
                                      ? "Query parameter '%.60s' is repeated."
                                  : self->count == AIGW_ADMIN_QUERY_MAX_PARAMS
                                      ? "Too many query parameters at '%.60s'."
                                      : NULL;
            if (problem) {
                S_INVALID (err, "invalid_field", strlen (name) < sizeof err->param ? name : NULL,
                           problem, name);
                free (name);
                free (value);
                aigw_admin_query_free (self);
                return -1;
            }
            self->names[self->count] = name;
            self->values[self->count] = value;
            self->count++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

const char *
aigw_admin_query_get (const aigw_admin_query_t *self, const char *name)
{
    for (int i = 0; i < self->count; i++)
        if (strcmp (self->names[i], name) == 0)
            return self->values[i];
    return NULL;
}

void
aigw_admin_query_free (aigw_admin_query_t *self)
{
    for (int i = 0; i < self->count; i++) {
        free (self->names[i]);
        free (self->values[i]);
    }
    memset (self, 0, sizeof *self);
}

int
aigw_admin_query_limit (const aigw_admin_query_t *self, int *limit, aigw_admin_error_t *err)
{
    const char *text = aigw_admin_query_get (self, "limit");
    *limit = AIGW_ADMIN_LIMIT_DEFAULT;
    if (!text)
        return 0;
    char *end;
    long value = strtol (text, &end, 10);
    if (!*text || *end || !isdigit ((unsigned char) text[0]) || value < 1
        || value > AIGW_ADMIN_LIMIT_MAX) {
        S_INVALID (err, "invalid_field", "limit", "'limit' must be an integer from 1 to %d.",
                   AIGW_ADMIN_LIMIT_MAX);
        return -1;
    }
    *limit = (int) value;
    return 0;
}

//  Call FN on each trimmed, non-empty entry of LIST until it returns true.
static bool
s_each_permission (const char *list, bool (*fn) (const char *, size_t, void *), void *arg)
{
    const char *p = list ? list : "";
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start && fn (start, (size_t) (end - start), arg))
            return true;
    }
    return false;
}

static bool
s_grants (const char *entry, size_t len, void *arg)
{
    const char *needed = (const char *) arg;
    return (len == 1 && entry[0] == '*')
           || (len == strlen (needed) && memcmp (entry, needed, len) == 0);
}

bool
aigw_admin_permitted (const char *permissions, const char *needed)
{
    return s_each_permission (permissions, s_grants, (void *) needed);
}

//  Appends an entry to the output buffer of _permissions_normalize.
static bool
s_append (const char *entry, size_t len, void *arg)
{
    char *out = (char *) arg;
    size_t used = strlen (out);
    if (used)
        out[used++] = ',';
    memcpy (out + used, entry, len);
    out[used + len] = 0;
    return false;
}

char *
aigw_admin_permissions_normalize (const char *permissions)
{
    char *out = calloc (1, (permissions ? strlen (permissions) : 0) + 1);
    if (out)
        s_each_permission (permissions, s_append, out);
    return out;
}

void
aigw_admin_input_test (bool verbose)
{
    aigw_admin_error_t err;

    //  Bodies
    json_t *body = aigw_admin_input_body (NULL, 0, &err);
    assert (body && json_object_size (body) == 0);
    json_decref (body);
    assert (!aigw_admin_input_body ("{", 1, &err));
    assert (err.status == 400 && strcmp (err.code, "invalid_json") == 0);
    assert (!aigw_admin_input_body ("[1]", 3, &err));
    assert (strcmp (err.code, "invalid_json") == 0);
    const char *dup = "{\"name\":\"a\",\"name\":\"b\"}";
    assert (!aigw_admin_input_body (dup, strlen (dup), &err));

    const aigw_admin_field_t fields[] = {
        {"tenant_id", AIGW_ADMIN_FIELD_UUID, true},    {"name", AIGW_ADMIN_FIELD_NAME, true},
        {"role", AIGW_ADMIN_FIELD_ROLE, true},         {"expires_at", AIGW_ADMIN_FIELD_TIME, false},
        {"models", AIGW_ADMIN_FIELD_MODELS, false},    {"rpm", AIGW_ADMIN_FIELD_RATE, false},
        {"budget_usd", AIGW_ADMIN_FIELD_MONEY, false}, {"metadata", AIGW_ADMIN_FIELD_OBJECT, false},
        {"revoked", AIGW_ADMIN_FIELD_TRUE, false},     {"keep", AIGW_ADMIN_FIELD_BOOL, false},
        {"follow", AIGW_ADMIN_FIELD_SETTING, false},
    };
    size_t count = sizeof fields / sizeof fields[0];
    struct {
        const char *json;   //  body
        const char *code;   //  expected code, NULL = accepted
        const char *param;  //  expected param
    } cases[] = {
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\"}",
         NULL, NULL},
        {"{\"tenant_id\":\"3F0C2B1A-0000-4000-8000-00000000ABCD\",\"name\":"
         "\"\\\"'; DROP TABLE x; --\",\"role\":\"tenant-admin\",\"expires_at\":null,"
         "\"models\":[\"gpt-4o\"],\"rpm\":5,\"budget_usd\":12.5,\"metadata\":{\"a\":[1]},"
         "\"revoked\":true}",
         NULL, NULL},
        {"{\"name\":\"k\",\"role\":\"viewer\"}", "missing_field", "tenant_id"},
        {"{\"tenant_id\":\"nope\",\"name\":\"k\",\"role\":\"viewer\"}", "invalid_field",
         "tenant_id"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"\","
         "\"role\":\"viewer\"}",
         "invalid_field", "name"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":7,"
         "\"role\":\"viewer\"}",
         "invalid_field", "name"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"Viewer\"}",
         "invalid_field", "role"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"rpm\":0}",
         "invalid_field", "rpm"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"rpm\":1.5}",
         "invalid_field", "rpm"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"expires_at\":\"tomorrow\"}",
         "invalid_field", "expires_at"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"budget_usd\":-1}",
         "invalid_field", "budget_usd"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"models\":[\"\"]}",
         "invalid_field", "models"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"metadata\":[]}",
         "invalid_field", "metadata"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"revoked\":false}",
         "invalid_field", "revoked"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"colour\":\"red\"}",
         "invalid_field", "colour"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"keep\":false}",
         NULL, NULL},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"keep\":\"yes\"}",
         "invalid_field", "keep"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"keep\":null}",
         "invalid_field", "keep"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"follow\":null,\"keep\":true}",
         NULL, NULL},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"follow\":false}",
         NULL, NULL},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"follow\":\"false\"}",
         "invalid_field", "follow"},
        {"{\"tenant_id\":\"3f0c2b1a-0000-4000-8000-00000000abcd\",\"name\":\"k\","
         "\"role\":\"viewer\",\"follow\":0}",
         "invalid_field", "follow"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        body = aigw_admin_input_body (cases[i].json, strlen (cases[i].json), &err);
        assert (body);
        int rc = aigw_admin_input_check (body, fields, count, &err);
        if (verbose)
            printf ("case %zu: rc %d %s\n", i, rc, rc ? err.message : "");
        if (cases[i].code) {
            assert (rc == -1 && err.status == 400);
            assert (strcmp (err.code, cases[i].code) == 0);
            assert (strcmp (err.param, cases[i].param) == 0);
        }
        else
            assert (rc == 0);
        json_decref (body);
    }
    //  Names count characters, not bytes: 200 two-byte characters pass.
    char long_name[2 * AIGW_ADMIN_NAME_MAX + 64];
    strcpy (long_name, "{\"name\":\"");
    for (int i = 0; i < AIGW_ADMIN_NAME_MAX; i++)
        strcat (long_name, "\xc3\xa9");
    strcat (long_name, "\"}");
    const aigw_admin_field_t name_only[] = {{"name", AIGW_ADMIN_FIELD_NAME, true}};
    body = aigw_admin_input_body (long_name, strlen (long_name), &err);
    assert (body && aigw_admin_input_check (body, name_only, 1, &err) == 0);
    json_object_set_new (body, "name", json_string ("x"));
    char many[AIGW_ADMIN_NAME_MAX + 2];
    memset (many, 'x', sizeof many - 1);
    many[sizeof many - 1] = 0;
    json_object_set_new (body, "name", json_string (many));
    assert (aigw_admin_input_check (body, name_only, 1, &err) == -1);
    json_decref (body);

    //  Limits: one validator (aigw_limits), its field path in param.
    const aigw_admin_field_t with_limits[] = {{"rpm", AIGW_ADMIN_FIELD_RATE, false},
                                              {"tpm", AIGW_ADMIN_FIELD_RATE, false},
                                              {"budget_usd", AIGW_ADMIN_FIELD_MONEY, false},
                                              {"limits", AIGW_ADMIN_FIELD_LIMITS, false}};
    struct {
        const char *json;   //  body
        const char *param;  //  expected param, NULL = accepted
    } limit_cases[] = {
        {"{\"limits\":{\"rpm\":5,\"models\":{\"gpt-4o\":{\"tpm\":9}}}}", NULL},
        {"{\"limits\":null}", NULL},
        {"{\"rpm\":5,\"limits\":{\"rpm\":5,\"tpm\":null}}", NULL},
        {"{\"limits\":{\"models\":{\"gpt-4o\":{\"rpm\":0}}}}", "limits.models.gpt-4o.rpm"},
        {"{\"limits\":{\"budget\":{\"usd\":1,\"period\":\"year\"}}}", "limits.budget.period"},
        {"{\"limits\":{\"burst\":1}}", "limits.burst"},
        {"{\"limits\":7}", "limits"},
        {"{\"budget_usd\":9000000001}", "budget_usd"},
    };
    for (size_t i = 0; i < sizeof limit_cases / sizeof limit_cases[0]; i++) {
        body = aigw_admin_input_body (limit_cases[i].json, strlen (limit_cases[i].json), &err);
        assert (body);
        int rc = aigw_admin_input_check (body, with_limits, 4, &err);
        if (limit_cases[i].param)
            assert (rc == -1 && err.status == 400 && strcmp (err.param, limit_cases[i].param) == 0
                    && strcmp (err.code, "invalid_field") == 0);
        else
            assert (rc == 0 && aigw_admin_input_limits (body, true, &err) == 0);
        json_decref (body);
    }
    //  The two names of one value must agree; nulls go; the key's limits
    //  are the object with the SPEC's fields folded in.
    const char *disagree[][2]
        = {{"{\"rpm\":5,\"limits\":{\"rpm\":6}}", "rpm"},
           {"{\"tpm\":5,\"limits\":{\"tpm\":6}}", "tpm"},
           {"{\"budget_usd\":5,\"limits\":{\"budget\":{\"usd\":6}}}", "budget_usd"},
           {"{\"budget_usd\":5,\"limits\":{\"budget\":{\"usd\":5,\"period\":\"day\"}}}",
            "budget_usd"}};
    for (size_t i = 0; i < sizeof disagree / sizeof disagree[0]; i++) {
        body = aigw_admin_input_body (disagree[i][0], strlen (disagree[i][0]), &err);
        assert (body && aigw_admin_input_check (body, with_limits, 4, &err) == 0);
        assert (aigw_admin_input_limits (body, true, &err) == -1);
        assert (strcmp (err.param, disagree[i][1]) == 0 && err.status == 400);
        assert (aigw_admin_input_limits (body, false, &err) == 0);
        json_decref (body);
    }
    const char *agree = "{\"rpm\":5,\"budget_usd\":2.5,\"limits\":{\"rpm\":5,\"rpd\":null,"
                        "\"budget\":{\"usd\":2.5,\"period\":\"month\"}}}";
    body = aigw_admin_input_body (agree, strlen (agree), &err);
    assert (body && aigw_admin_input_limits (body, true, &err) == 0);
    assert (!json_object_get (json_object_get (body, "limits"), "rpd"));
    json_decref (body);
    const char *spec = "{\"rpm\":7,\"budget_usd\":3,\"limits\":{\"concurrency\":2}}";
    body = aigw_admin_input_body (spec, strlen (spec), &err);
    json_t *merged = aigw_admin_input_key_limits (body);
    char *merged_text = json_dumps (merged, JSON_COMPACT | JSON_SORT_KEYS);
    assert (strcmp (merged_text, "{\"budget\":{\"period\":\"month\",\"usd\":3},"
                                 "\"concurrency\":2,\"rpm\":7}")
            == 0);
    free (merged_text);
    json_decref (merged);
    json_decref (body);

    //  Times
    int64_t ms;
    char text[AIGW_ADMIN_TIME_SIZE];
    aigw_admin_time_format (1896087600500LL, text);
    assert (strcmp (text, "2030-01-31T11:00:00.500Z") == 0);
    aigw_admin_time_format (-1, text);
    assert (strcmp (text, "1969-12-31T23:59:59.999Z") == 0);
    assert (aigw_text_time_parse (text, &ms) == 0 && ms == -1);

    //  Cursors round-trip, and nothing else decodes
    char *cursor = aigw_admin_cursor_encode ("2025-03-01T10:00:00.123456Z",
                                             "3f0c2b1a-0000-4000-8000-00000000abcd");
    assert (cursor && !strpbrk (cursor, "+/="));
    char time[AIGW_ADMIN_TIME_SIZE], id[AIGW_ADMIN_UUID_SIZE];
    assert (aigw_admin_cursor_decode (cursor, time, id) == 0);
    assert (strcmp (time, "2025-03-01T10:00:00.123456Z") == 0);
    assert (strcmp (id, "3f0c2b1a-0000-4000-8000-00000000abcd") == 0);
    cursor[3] = cursor[3] == 'A' ? 'B' : 'A';
    assert (aigw_admin_cursor_decode (cursor, time, id) == -1);
    free (cursor);
    assert (aigw_admin_cursor_decode ("", time, id) == -1);
    assert (aigw_admin_cursor_decode ("!!!!", time, id) == -1);
    assert (aigw_admin_cursor_decode ("fHw", time, id) == -1);
    cursor = aigw_admin_cursor_encode ("x", "3f0c2b1a-0000-4000-8000-00000000abcd");
    assert (aigw_admin_cursor_decode (cursor, time, id) == -1);
    free (cursor);
    //  Serial ids (the audit log's) decode too; nothing else does.
    cursor = aigw_admin_cursor_encode ("2025-03-01T10:00:00.123456Z", "12345");
    assert (aigw_admin_cursor_decode (cursor, time, id) == 0 && strcmp (id, "12345") == 0);
    free (cursor);
    cursor = aigw_admin_cursor_encode ("2025-03-01T10:00:00.123456Z", "12a45");
    assert (aigw_admin_cursor_decode (cursor, time, id) == -1);
    free (cursor);
    cursor = aigw_admin_cursor_encode ("2025-03-01T10:00:00.123456Z", "1234567890123456789");
    assert (aigw_admin_cursor_decode (cursor, time, id) == -1);
    free (cursor);

    //  Query strings
    aigw_admin_query_t query;
    const char *allowed[] = {"limit", "cursor", "name", "revoked", NULL};
    assert (aigw_admin_query_parse (&query, "limit=10&name=a%20b+c%C3%A9&revoked", allowed, &err)
            == 0);
    assert (strcmp (aigw_admin_query_get (&query, "name"), "a b c\xc3\xa9") == 0);
    assert (strcmp (aigw_admin_query_get (&query, "revoked"), "") == 0);
    assert (!aigw_admin_query_get (&query, "cursor"));
    int limit;
    assert (aigw_admin_query_limit (&query, &limit, &err) == 0 && limit == 10);
    aigw_admin_query_free (&query);
    assert (aigw_admin_query_parse (&query, NULL, allowed, &err) == 0 && query.count == 0);
    assert (aigw_admin_query_limit (&query, &limit, &err) == 0
            && limit == AIGW_ADMIN_LIMIT_DEFAULT);
    assert (aigw_admin_query_parse (&query, "colour=red", allowed, &err) == -1);
    assert (strcmp (err.param, "colour") == 0);
    assert (aigw_admin_query_parse (&query, "name=a&name=b", allowed, &err) == -1);
    assert (aigw_admin_query_parse (&query, "name=%zz", allowed, &err) == -1);
    assert (aigw_admin_query_parse (&query, "name=%00", allowed, &err) == -1);
    assert (aigw_admin_query_parse (&query, "name=%C3", allowed, &err) == -1);
    assert (aigw_admin_query_parse (&query, "name=%", allowed, &err) == -1);
    const char *limits[] = {"limit=0", "limit=201", "limit=x", "limit=", "limit=-5", "limit=5x"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        assert (aigw_admin_query_parse (&query, limits[i], allowed, &err) == 0);
        assert (aigw_admin_query_limit (&query, &limit, &err) == -1);
        assert (strcmp (err.param, "limit") == 0);
        aigw_admin_query_free (&query);
    }

    //  Permissions
    assert (aigw_admin_permitted ("*", "keys:write"));
    assert (aigw_admin_permitted ("inference, keys:read ,keys:write", "keys:write"));
    assert (!aigw_admin_permitted ("keys:read", "keys:write"));
    assert (!aigw_admin_permitted ("keys:writer", "keys:write"));
    assert (!aigw_admin_permitted ("", "keys:read"));
    assert (!aigw_admin_permitted (NULL, "keys:read"));
    char *clean = aigw_admin_permissions_normalize (" a , ,b,, c ");
    assert (clean && strcmp (clean, "a,b,c") == 0);
    free (clean);
    clean = aigw_admin_permissions_normalize (NULL);
    assert (clean && *clean == 0);
    free (clean);
    if (verbose)
        printf ("admin_input: ok\n");
}
