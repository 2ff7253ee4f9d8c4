/*  aigw_admin_usage: GET /api/v1/admin/usage and usage/records: their query
    string (filters, time range, group_by) checked into statement values,
    and their two statements. Pure: no I/O; the admin actor routes, scopes
    and runs them (actors/admin/aigw_admin.c).

    Both statements read usage_records, never the roll-ups: latency
    percentiles need the raw rows over the asked range anyway, so one scan
    gives sums and percentiles together, for any start and end (the
    roll-ups hold whole hours) and any status filter (they hold none), and
    the sums equal the rows by construction. The roll-ups are for budgets
    (schemas/sql/005_usage_rollups.sql). */
#ifndef AIGW_ADMIN_USAGE_H_INCLUDED
#define AIGW_ADMIN_USAGE_H_INCLUDED

#include "aigw_admin_input.h"
#include "aigw_cp_sql.h"

//  The range when the query names none: the last 24 hours.
#define AIGW_ADMIN_USAGE_DEFAULT_RANGE_MS (24LL * 3600 * 1000)
//  Most groups in one answer; past it the answer says "truncated": true.
#define AIGW_ADMIN_USAGE_GROUPS_MAX 10000
//  Longest tenant_id, key_id, model or deployment filter, in bytes.
#define AIGW_ADMIN_USAGE_FILTER_MAX 600

//  group_by members, as bits (the summary statement tests the same ones).
enum {
    AIGW_ADMIN_USAGE_BY_TENANT = 1,
    AIGW_ADMIN_USAGE_BY_KEY = 2,
    AIGW_ADMIN_USAGE_BY_MODEL = 4,
    AIGW_ADMIN_USAGE_BY_DEPLOYMENT = 8,
    AIGW_ADMIN_USAGE_BY_HOUR = 16,
    AIGW_ADMIN_USAGE_BY_DAY = 32
};

//  A checked query: the statements' values as text. Strings point into
//  the query it came from, or into this struct.
typedef struct {
    const char *tenant_id;             //  filter, NULL = any
    const char *key_id;                //  filter, NULL = any
    const char *model;                 //  filter, NULL = any
    const char *deployment;            //  filter, NULL = any
    const char *status_min;            //  lowest status, NULL = any
    const char *status_max;            //  highest status, NULL = any
    char start[AIGW_ADMIN_TIME_SIZE];  //  first instant, RFC 3339
    char end[AIGW_ADMIN_TIME_SIZE];    //  first instant after the range
    unsigned group_by;                 //  AIGW_ADMIN_USAGE_BY_* bits
    char min_text[16];                 //  status_min's text
    char max_text[16];                 //  status_max's text
    char group_text[16];               //  group_by's text
} aigw_admin_usage_t;

//  The query parameters each route takes (NULL-terminated), for
//  aigw_admin_query_parse: RECORDS for usage/records (limit and cursor,
//  no group_by), else usage.
const char *const *aigw_admin_usage_params (bool records);

//  Check QUERY (parsed with the names above) into SELF; NOW_MS is the wall
//  clock (Unix ms), which the default range ends at. Returns 0, or -1 with
//  ERR filled (400 naming the parameter). limit and cursor are the
//  caller's.
int aigw_admin_usage_parse (aigw_admin_usage_t *self, const aigw_admin_query_t *query,
                            int64_t now_ms, aigw_admin_error_t *err);

//  Usage per group. One row: {"data": [{"group", "requests", "errors",
//  "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd",
//  "latency_ms": {"p50", "p95", "p99"}}], "next_cursor": null, "start",
//  "end", "truncated"}. Scope: ALL "t" sees every tenant, else
//  only TENANT's rows; OWN_KEY, when not NULL, narrows to that key's.
extern const aigw_cp_sql_t aigw_admin_usage_sql_summary;
enum {
    AIGW_ADMIN_USAGE_ALL,
    AIGW_ADMIN_USAGE_SCOPE,
    AIGW_ADMIN_USAGE_OWN_KEY,
    AIGW_ADMIN_USAGE_TENANT,
    AIGW_ADMIN_USAGE_KEY,
    AIGW_ADMIN_USAGE_MODEL,
    AIGW_ADMIN_USAGE_DEPLOYMENT,
    AIGW_ADMIN_USAGE_STATUS_MIN,
    AIGW_ADMIN_USAGE_STATUS_MAX,
    AIGW_ADMIN_USAGE_START,
    AIGW_ADMIN_USAGE_END,
    AIGW_ADMIN_USAGE_GROUP_BY,  //  the AIGW_ADMIN_USAGE_BY_* bits, in decimal
    AIGW_ADMIN_USAGE_GROUPS,    //  AIGW_ADMIN_USAGE_GROUPS_MAX
    AIGW_ADMIN_USAGE_COUNT
};

//  Raw records, newest first. Rows: record JSON (nothing secret: the
//  columns are named one by one), cursor time, record id. The same scope
//  and filter values as the summary, in the same slots.
extern const aigw_cp_sql_t aigw_admin_usage_sql_records;
enum {
    AIGW_ADMIN_USAGE_CURSOR_TIME = AIGW_ADMIN_USAGE_END + 1,  //  NULL = from the newest
    AIGW_ADMIN_USAGE_CURSOR_ID,
    AIGW_ADMIN_USAGE_LIMIT,
    AIGW_ADMIN_USAGE_CONTENT,  //  "t": show content (the caller holds usage:read_content)
    AIGW_ADMIN_USAGE_RECORDS_COUNT
};

//  Slots of the larger statement (the records'; the selftest checks): a
//  params array this long fits either.
#define AIGW_ADMIN_USAGE_PARAMS_MAX AIGW_ADMIN_USAGE_RECORDS_COUNT

//  Fill the filter slots of PARAMS (either statement) from SELF, and the
//  group_by slots when SUMMARY.
void aigw_admin_usage_params_fill (const aigw_admin_usage_t *self, const char **params,
                                   bool summary);

void aigw_admin_usage_test (bool verbose);

#endif
