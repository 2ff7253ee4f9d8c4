/*  aigw_admin_usage: the usage routes' input and statements; pure. */
#include "aigw_admin_usage.h"
#include "aigw_text.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef streq
#define streq(s1, s2) (!strcmp ((s1), (s2)))
#endif
//  A number constant as a string literal.
#define S_TEXT_(x) #x
#define S_TEXT(x)  S_TEXT_ (x)

#define S_INVALID(err, param, ...)                                                       \
    aigw_admin_error_set ((err), 400, "invalid_request_error", "invalid_field", (param), \
                          __VA_ARGS__)

//  ---------------------------------------------------------------------
//  Statements. Every value is a parameter; the group_by members are
//  bits that switch a grouping column between its value and NULL, so
//  the text never changes (PostgreSQL plans an unnamed statement with its
//  values, so the switched-off columns and NULL filters cost nothing, and
//  the time range prunes the day partitions).
// clang-format off
//  $1 all, $2 scope, $3 own key, $4 tenant, $5 key, $6 model,
//  $7 deployment, $8 status min, $9 status max, $10 start, $11 end
#define S_WHERE                                                                  \
    " FROM usage_records r WHERE r.ts >= $10::timestamptz AND r.ts < $11::timestamptz" \
    " AND ($1::boolean OR r.tenant_id = $2::text)"                                 \
    " AND ($3::text IS NULL OR r.key_id = $3::text)"                               \
    " AND ($4::text IS NULL OR r.tenant_id = $4::text)"                            \
    " AND ($5::text IS NULL OR r.key_id = $5::text)"                               \
    " AND ($6::text IS NULL OR r.model = $6::text)"                                \
    " AND ($7::text IS NULL OR r.deployment = $7::text)"                           \
    " AND ($8::integer IS NULL OR r.status >= $8::integer)"                        \
    " AND ($9::integer IS NULL OR r.status <= $9::integer)"

//  Groups in time order, then by tenant, key, model, deployment.
#define S_GROUP_ORDER "g.hour, g.day, g.tenant_id, g.key_id, g.model, g.deployment"

//  $12 group_by bits (tenant 1, key 2, model 4, deployment 8, hour 16,
//  day 32); $13 most groups.
const aigw_cp_sql_t aigw_admin_usage_sql_summary = {
    .text = "WITH g AS (SELECT"
        " CASE WHEN ($12::integer & 1) <> 0 THEN r.tenant_id END AS tenant_id,"
        " CASE WHEN ($12::integer & 2) <> 0 THEN r.key_id END AS key_id,"
        " CASE WHEN ($12::integer & 4) <> 0 THEN r.model END AS model,"
        " CASE WHEN ($12::integer & 8) <> 0 THEN r.deployment END AS deployment,"
        " CASE WHEN ($12::integer & 16) <> 0 THEN date_trunc ('hour', r.ts, 'UTC') END AS hour,"
        " CASE WHEN ($12::integer & 32) <> 0 THEN date_trunc ('day', r.ts, 'UTC') END AS day,"
        " max (r.tenant) AS tenant, max (r.key_name) AS key_name,"
        " count (*) AS requests, count (*) FILTER (WHERE r.status >= 400) AS errors,"
        " coalesce (sum (r.prompt_tokens), 0) AS prompt_tokens,"
        " coalesce (sum (r.completion_tokens), 0) AS completion_tokens,"
        " coalesce (sum (r.cached_tokens), 0) AS cached_tokens,"
        " coalesce (sum (r.cost_usd), 0) AS cost_usd,"
        " percentile_disc (0.5) WITHIN GROUP (ORDER BY r.latency_ms) AS p50,"
        " percentile_disc (0.95) WITHIN GROUP (ORDER BY r.latency_ms) AS p95,"
        " percentile_disc (0.99) WITHIN GROUP (ORDER BY r.latency_ms) AS p99"
        S_WHERE
        " GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 5, 6, 1, 2, 3, 4 LIMIT $13::integer + 1),"
        " numbered AS (SELECT g.*, row_number () OVER (ORDER BY " S_GROUP_ORDER ") AS n FROM g g)"
        " SELECT json_build_object ('data', coalesce ((SELECT json_agg (json_build_object ('group',"
        " CASE WHEN ($12::integer & 1) <> 0 THEN jsonb_build_object ('tenant_id', g.tenant_id,"
        " 'tenant', g.tenant) ELSE '{}'::jsonb END"
        " || CASE WHEN ($12::integer & 2) <> 0 THEN jsonb_build_object ('key_id', g.key_id,"
        " 'key_name', g.key_name) ELSE '{}'::jsonb END"
        " || CASE WHEN ($12::integer & 4) <> 0 THEN jsonb_build_object ('model', g.model) ELSE '{}'::jsonb END"
        " || CASE WHEN ($12::integer & 8) <> 0 THEN jsonb_build_object ('deployment', g.deployment)"
        " ELSE '{}'::jsonb END"
        " || CASE WHEN ($12::integer & 16) <> 0 THEN jsonb_build_object ('hour', " AIGW_CP_SQL_TS ("g.hour") ")"
        " ELSE '{}'::jsonb END"
        " || CASE WHEN ($12::integer & 32) <> 0 THEN jsonb_build_object ('day', " AIGW_CP_SQL_TS ("g.day") ")"
        " ELSE '{}'::jsonb END,"
        " 'requests', g.requests, 'errors', g.errors, 'prompt_tokens', g.prompt_tokens,"
        " 'completion_tokens', g.completion_tokens, 'cached_tokens', g.cached_tokens,"
        " 'cost_usd', g.cost_usd,"
        " 'latency_ms', json_build_object ('p50', g.p50, 'p95', g.p95, 'p99', g.p99))"
        " ORDER BY g.n) FROM numbered g WHERE g.n <= $13::integer), '[]'::json),"
        " 'next_cursor', NULL,"
        " 'start', " AIGW_CP_SQL_TS ("$10::timestamptz") ","
        " 'end', " AIGW_CP_SQL_TS ("$11::timestamptz") ","
        " 'truncated', (SELECT count (*) FROM g) > $13::integer)",
    .count = AIGW_ADMIN_USAGE_COUNT};

//  $12 cursor time, $13 cursor id, $14 limit, $15 with content. Newest
//  first; the columns one by one, so a column added later is never shown
//  by accident. content (a tenant's prompts and answers, 008) only when
//  $15 says the caller may read it; the scope above still holds.
#define S_RECORD_MEMBERS                                                         \
    "'record_id', r.record_id, 'ts', " AIGW_CP_SQL_TS ("r.ts") ","                \
    " 'request_id', r.request_id, 'tenant_id', r.tenant_id, 'tenant', r.tenant,"  \
    " 'key_id', r.key_id, 'key_name', r.key_name, 'principal_type', r.principal_type," \
    " 'model', r.model, 'deployment', r.deployment, 'provider', r.provider,"      \
    " 'endpoint', r.endpoint, 'stream', r.stream, 'status', r.status,"            \
    " 'error_type', r.error_type, 'error_code', r.error_code,"                    \
    " 'prompt_tokens', r.prompt_tokens, 'completion_tokens', r.completion_tokens," \
    " 'cached_tokens', r.cached_tokens, 'cost_usd', r.cost_usd,"                  \
    " 'latency_ms', r.latency_ms, 'ttft_ms', r.ttft_ms, 'cache', r.cache,"        \
    " 'attempts', r.attempts"
const aigw_cp_sql_t aigw_admin_usage_sql_records = {
    .text = "SELECT CASE WHEN $15::boolean"
        " THEN json_build_object (" S_RECORD_MEMBERS ", 'content', r.content)"
        " ELSE json_build_object (" S_RECORD_MEMBERS ") END,"
        " " AIGW_CP_SQL_TS_US ("r.ts") ", r.record_id::text"
        S_WHERE
        " AND ($12::timestamptz IS NULL OR (r.ts, r.record_id) < ($12::timestamptz, $13::uuid))"
        " ORDER BY r.ts DESC, r.record_id DESC LIMIT $14::integer",
    .count = AIGW_ADMIN_USAGE_RECORDS_COUNT};
// clang-format on

//  ---------------------------------------------------------------------
//  Input

const char *const *
aigw_admin_usage_params (bool records)
{
    static const char *const summary[] = {"tenant_id", "key_id", "model",    "deployment", "status",
                                          "start",     "end",    "group_by", NULL};
    static const char *const raw[] = {"tenant_id", "key_id", "model", "deployment", "status",
                                      "start",     "end",    "limit", "cursor",     NULL};
    return records ? raw : summary;
}

//  group_by's members, in the order of their bits.
static const char *const s_members[] = {"tenant", "key", "model", "deployment", "hour", "day"};
#define S_MEMBERS (sizeof s_members / sizeof s_members[0])

//  Read group_by TEXT into *BITS. 0, or -1 with ERR filled.
static int
s_group_by (const char *text, unsigned *bits, aigw_admin_error_t *err)
{
    *bits = 0;
    const char *p = text;
    while (true) {
        size_t len = strcspn (p, ",");
        size_t i = 0;
        while (i < S_MEMBERS && (strlen (s_members[i]) != len || memcmp (s_members[i], p, len)))
            i++;
        if (i == S_MEMBERS) {
            S_INVALID (err, "group_by",
                       "'group_by' is a comma-separated list of tenant, key, model, "
                       "deployment, hour and day.");
            return -1;
        }
        *bits |= 1u << i;
        if (!p[len])
            return 0;
        p += len + 1;
    }
}

//  Read status TEXT: "404", a class "4xx", or "error" (400 and up).
static int
s_status (aigw_admin_usage_t *self, const char *text, aigw_admin_error_t *err)
{
    int min = 0, max = 0;
    size_t len = strlen (text);
    if (streq (text, "error"))
        min = 400, max = 999;
    else if (len == 3 && text[0] >= '1' && text[0] <= '5'
             && ((text[1] == 'x' && text[2] == 'x') || (text[1] == 'X' && text[2] == 'X')))
        min = (text[0] - '0') * 100, max = min + 99;
    else if (len == 3 && isdigit ((unsigned char) text[0]) && isdigit ((unsigned char) text[1])
             && isdigit ((unsigned char) text[2]) && text[0] >= '1' && text[0] <= '5')
        min = max = atoi (text);
    else {
        S_INVALID (err, "status",
                   "'status' must be a status from 100 to 599, a class such as 4xx, or "
                   "'error'.");
        return -1;
    }
    snprintf (self->min_text, sizeof self->min_text, "%d", min);
    snprintf (self->max_text, sizeof self->max_text, "%d", max);
    self->status_min = self->min_text;
    self->status_max = self->max_text;
    return 0;
}

//  Read time NAME from QUERY into *MS, when given. 0, or -1 with ERR.
static int
s_time (const aigw_admin_query_t *query, const char *name, int64_t *ms, bool *given,
        aigw_admin_error_t *err)
{
    const char *text = aigw_admin_query_get (query, name);
    *given = text != NULL;
    if (text && aigw_text_time_parse (text, ms)) {
        S_INVALID (err, name, "'%s' must be an RFC 3339 date-time such as 2030-01-31T12:00:00Z.",
                   name);
        return -1;
    }
    return 0;
}

int
aigw_admin_usage_parse (aigw_admin_usage_t *self, const aigw_admin_query_t *query, int64_t now_ms,
                        aigw_admin_error_t *err)
{
    memset (self, 0, sizeof *self);
    static const char *const filters[] = {"tenant_id", "key_id", "model", "deployment"};
    const char **slots[] = {&self->tenant_id, &self->key_id, &self->model, &self->deployment};
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        const char *text = aigw_admin_query_get (query, filters[i]);
        if (text && (!*text || strlen (text) > AIGW_ADMIN_USAGE_FILTER_MAX)) {
            S_INVALID (err, filters[i], "'%s' must be 1 to %d bytes.", filters[i],
                       AIGW_ADMIN_USAGE_FILTER_MAX);
            return -1;
        }
        *slots[i] = text;
    }
    const char *status = aigw_admin_query_get (query, "status");
    if (status && s_status (self, status, err))
        return -1;
    const char *group_by = aigw_admin_query_get (query, "group_by");
    if (group_by && s_group_by (group_by, &self->group_by, err))
        return -1;
    int64_t start = 0, end = 0;
    bool has_start, has_end;
    if (s_time (query, "start", &start, &has_start, err)
        || s_time (query, "end", &end, &has_end, err))
        return -1;
    //  Missing ends: the 24 hours up to END, or up to now.
    if (!has_end)
        end = has_start && start > now_ms ? start : now_ms;
    if (!has_start)
        start = end - AIGW_ADMIN_USAGE_DEFAULT_RANGE_MS;
    if (start > end) {
        S_INVALID (err, "start", "'start' must not be after 'end'.");
        return -1;
    }
    snprintf (self->group_text, sizeof self->group_text, "%u", self->group_by);
    aigw_admin_time_format (start, self->start);
    aigw_admin_time_format (end, self->end);
    return 0;
}

void
aigw_admin_usage_params_fill (const aigw_admin_usage_t *self, const char **params, bool summary)
{
    params[AIGW_ADMIN_USAGE_TENANT] = self->tenant_id;
    params[AIGW_ADMIN_USAGE_KEY] = self->key_id;
    params[AIGW_ADMIN_USAGE_MODEL] = self->model;
    params[AIGW_ADMIN_USAGE_DEPLOYMENT] = self->deployment;
    params[AIGW_ADMIN_USAGE_STATUS_MIN] = self->status_min;
    params[AIGW_ADMIN_USAGE_STATUS_MAX] = self->status_max;
    params[AIGW_ADMIN_USAGE_START] = self->start;
    params[AIGW_ADMIN_USAGE_END] = self->end;
    if (!summary)
        return;
    params[AIGW_ADMIN_USAGE_GROUP_BY] = self->group_text;
    params[AIGW_ADMIN_USAGE_GROUPS] = S_TEXT (AIGW_ADMIN_USAGE_GROUPS_MAX);
}

//  ---------------------------------------------------------------------
//  Selftest

//  The highest $n in SQL.
static int
s_max_param (const char *sql)
{
    int max = 0;
    for (const char *p = strchr (sql, '$'); p; p = strchr (p + 1, '$'))
        if (isdigit ((unsigned char) p[1]) && atoi (p + 1) > max)
            max = atoi (p + 1);
    return max;
}

//  Parse QUERY_TEXT with the ROUTE's names at NOW; 0 or -1 with ERR.
static int
s_try (aigw_admin_usage_t *self, const char *query_text, bool records, int64_t now,
       aigw_admin_error_t *err)
{
    aigw_admin_query_t query;
    if (aigw_admin_query_parse (&query, query_text, aigw_admin_usage_params (records), err))
        return -1;
    int rc = aigw_admin_usage_parse (self, &query, now, err);
    //  The strings point into the query: keep none past it.
    self->tenant_id = self->key_id = self->model = self->deployment = NULL;
    aigw_admin_query_free (&query);
    return rc;
}

void
aigw_admin_usage_test (bool verbose)
{
    aigw_admin_usage_t u;
    aigw_admin_error_t err;
    int64_t now = 1750000000000LL;  //  2025-06-15T15:06:40Z
    //  Defaults: the last 24 hours, no filter, no group.
    assert (s_try (&u, NULL, false, now, &err) == 0);
    assert (streq (u.end, "2025-06-15T15:06:40.000Z"));
    assert (streq (u.start, "2025-06-14T15:06:40.000Z"));
    assert (!u.status_min && !u.status_max && u.group_by == 0);
    //  Only a start: up to now; only an end: the 24 hours before it.
    assert (s_try (&u, "start=2025-06-15T00:00:00Z", false, now, &err) == 0);
    assert (streq (u.start, "2025-06-15T00:00:00.000Z") && streq (u.end, u.end));
    assert (streq (u.end, "2025-06-15T15:06:40.000Z"));
    assert (s_try (&u, "end=2025-06-02T00:00:00%2B02:00", false, now, &err) == 0);
    assert (streq (u.end, "2025-06-01T22:00:00.000Z")
            && streq (u.start, "2025-05-31T22:00:00.000Z"));
    //  A start in the future and no end: an empty range, not an error.
    assert (s_try (&u, "start=2030-01-01T00:00:00Z", false, now, &err) == 0);
    assert (streq (u.start, u.end));
    //  start after end, bad times.
    assert (s_try (&u, "start=2025-06-02T00:00:00Z&end=2025-06-01T00:00:00Z", false, now, &err)
            == -1);
    assert (err.status == 400 && streq (err.param, "start"));
    assert (s_try (&u, "start=yesterday", false, now, &err) == -1 && streq (err.param, "start"));
    assert (s_try (&u, "end=2025-13-01T00:00:00Z", false, now, &err) == -1
            && streq (err.param, "end"));
    //  Status: one, a class, errors; anything else is refused.
    assert (s_try (&u, "status=404", false, now, &err) == 0);
    assert (streq (u.status_min, "404") && streq (u.status_max, "404"));
    assert (s_try (&u, "status=5xx", false, now, &err) == 0);
    assert (streq (u.status_min, "500") && streq (u.status_max, "599"));
    assert (s_try (&u, "status=error", false, now, &err) == 0);
    assert (streq (u.status_min, "400") && streq (u.status_max, "999"));
    const char *bad_status[] = {"status=",    "status=6xx", "status=40",  "status=4000",
                                "status=099", "status=4x",  "status=abc", "status=-404"};
    for (size_t i = 0; i < sizeof bad_status / sizeof bad_status[0]; i++) {
        assert (s_try (&u, bad_status[i], false, now, &err) == -1);
        assert (err.status == 400 && streq (err.param, "status"));
    }
    //  group_by: known members, any order, repeats harmless.
    assert (s_try (&u, "group_by=model,key,day", false, now, &err) == 0);
    assert (u.group_by
            == (AIGW_ADMIN_USAGE_BY_MODEL | AIGW_ADMIN_USAGE_BY_KEY | AIGW_ADMIN_USAGE_BY_DAY));
    assert (s_try (&u, "group_by=tenant,deployment,hour,tenant", false, now, &err) == 0);
    assert (u.group_by
            == (AIGW_ADMIN_USAGE_BY_TENANT | AIGW_ADMIN_USAGE_BY_DEPLOYMENT
                | AIGW_ADMIN_USAGE_BY_HOUR));
    const char *bad_groups[] = {"group_by=",           "group_by=model,", "group_by=week",
                                "group_by=model,,key", "group_by=Model",  "group_by=models"};
    for (size_t i = 0; i < sizeof bad_groups / sizeof bad_groups[0]; i++) {
        assert (s_try (&u, bad_groups[i], false, now, &err) == -1);
        assert (err.status == 400 && streq (err.param, "group_by"));
    }
    //  group_by is the summary's; limit and cursor the records'.
    assert (s_try (&u, "group_by=model", true, now, &err) == -1 && streq (err.param, "group_by"));
    assert (s_try (&u, "limit=5", false, now, &err) == -1 && streq (err.param, "limit"));
    assert (s_try (&u, "limit=5&cursor=x", true, now, &err) == 0);
    //  Filters: any text, not empty, capped.
    assert (s_try (&u, "model=&status=200", false, now, &err) == -1 && streq (err.param, "model"));
    char long_query[AIGW_ADMIN_USAGE_FILTER_MAX + 32] = "key_id=";
    memset (long_query + 7, 'k', AIGW_ADMIN_USAGE_FILTER_MAX + 1);
    long_query[7 + AIGW_ADMIN_USAGE_FILTER_MAX + 1] = 0;
    assert (s_try (&u, long_query, false, now, &err) == -1 && streq (err.param, "key_id"));
    //  Statement values: the filters into their slots, group_by as booleans.
    aigw_admin_query_t query;
    assert (aigw_admin_query_parse (&query, "tenant_id=t1&model=gpt&group_by=hour,key",
                                    aigw_admin_usage_params (false), &err)
            == 0);
    assert (aigw_admin_usage_parse (&u, &query, now, &err) == 0);
    const char *params[AIGW_ADMIN_USAGE_COUNT] = {NULL};
    aigw_admin_usage_params_fill (&u, params, true);
    assert (streq (params[AIGW_ADMIN_USAGE_TENANT], "t1"));
    assert (streq (params[AIGW_ADMIN_USAGE_MODEL], "gpt"));
    assert (!params[AIGW_ADMIN_USAGE_KEY] && !params[AIGW_ADMIN_USAGE_STATUS_MIN]);
    assert (atoi (params[AIGW_ADMIN_USAGE_GROUP_BY])
            == (AIGW_ADMIN_USAGE_BY_KEY | AIGW_ADMIN_USAGE_BY_HOUR));
    assert (atoi (params[AIGW_ADMIN_USAGE_GROUPS]) == AIGW_ADMIN_USAGE_GROUPS_MAX);
    assert (streq (params[AIGW_ADMIN_USAGE_END], "2025-06-15T15:06:40.000Z"));
    aigw_admin_query_free (&query);
    //  Statements: every slot a parameter, no format directive, nothing
    //  read wholesale.
    assert (s_max_param (aigw_admin_usage_sql_summary.text) == AIGW_ADMIN_USAGE_COUNT);
    assert ((int) AIGW_ADMIN_USAGE_COUNT <= (int) AIGW_ADMIN_USAGE_PARAMS_MAX);
    assert (s_max_param (aigw_admin_usage_sql_records.text) == AIGW_ADMIN_USAGE_RECORDS_COUNT);
    assert (!strstr (aigw_admin_usage_sql_summary.text, "%s"));
    assert (!strstr (aigw_admin_usage_sql_records.text, "%s"));
    assert (!strstr (aigw_admin_usage_sql_records.text, "to_json"));
    assert (!strstr (aigw_admin_usage_sql_records.text, "r.*"));
    if (verbose)
        printf ("admin_usage: ok\n");
}
