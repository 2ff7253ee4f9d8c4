/*  aigw_usage: usage records into PostgreSQL, in batches, with a spool. */
#include "aigw_usage.h"
#include "aigw_text.h"
#include "aigw_log.h"
#include "aigw_pgconn.h"
#include "aigw_spool.h"
#include "aigw_stats.h"

#include <jansson.h>
#include <stdlib.h>
#include <time.h>

//  The columns, in the order rows are written.
#define AIGW_USAGE_COLUMNS                                                             \
    "ts, record_id, request_id, tenant_id, tenant, key_id, key_name, principal_type, " \
    "model, deployment, provider, endpoint, stream, status, error_type, error_code, "  \
    "prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, ttft_ms, " \
    "cache, attempts, stages, guardrail, fallbacks, trace_id, content"
//  Fields in a row of today's columns, and in one written before 006 and
//  before 008 (a spool may hold those across an upgrade).
#define S_ROW_FIELDS    29
#define S_ROW_FIELDS_V1 24
#define S_ROW_FIELDS_V2 28
//  Longest stage name written into stages.
#define S_STAGE_NAME_MAX 32
//  One batch: its rows into the staging table, then into the records,
//  duplicates skipped, and the rows really inserted (RETURNING: a replayed
//  batch returns none) added to the hour, day and month roll-ups
//  (schemas/sql/005_usage_rollups.sql); one implicit transaction, so
//  records and roll-ups move together. Both inserts go in key order: two
//  usage actors writing overlapping batches (a record sent again to
//  another worker, hot roll-up rows) then wait for each other instead of
//  deadlocking.
// clang-format off
#define S_COPY_SQL                                                                         \
    "CREATE TEMP TABLE IF NOT EXISTS usage_staging (LIKE usage_records INCLUDING DEFAULTS)" \
    " ON COMMIT DELETE ROWS;"                                                              \
    "COPY usage_staging (" AIGW_USAGE_COLUMNS ") FROM STDIN;"                              \
    "WITH ins AS (INSERT INTO usage_records (" AIGW_USAGE_COLUMNS ") SELECT "              \
    AIGW_USAGE_COLUMNS " FROM usage_staging ORDER BY record_id, ts ON CONFLICT DO NOTHING" \
    " RETURNING ts, tenant_id, key_id, model, deployment, status, prompt_tokens,"          \
    " completion_tokens, cached_tokens, cost_usd),"                                        \
    " roll AS (INSERT INTO usage_rollups AS u (period, tenant_id, bucket, key_id, model, deployment," \
    " requests, errors, prompt_tokens, completion_tokens, cached_tokens, cost_usd)"        \
    " SELECT p.period, coalesce (i.tenant_id, ''), date_trunc (p.period, i.ts, 'UTC'),"    \
    " coalesce (i.key_id, ''), coalesce (i.model, ''), coalesce (i.deployment, ''),"       \
    " count (*), count (*) FILTER (WHERE i.status >= 400), sum (i.prompt_tokens),"         \
    " sum (i.completion_tokens), sum (i.cached_tokens), sum (i.cost_usd)"                  \
    " FROM ins i CROSS JOIN (VALUES ('hour'), ('day'), ('month')) AS p (period)"           \
    " GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"                                 \
    " ON CONFLICT (period, tenant_id, bucket, key_id, model, deployment) DO UPDATE SET"    \
    " requests = u.requests + EXCLUDED.requests, errors = u.errors + EXCLUDED.errors,"     \
    " prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,"                           \
    " completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,"               \
    " cached_tokens = u.cached_tokens + EXCLUDED.cached_tokens,"                           \
    " cost_usd = u.cost_usd + EXCLUDED.cost_usd RETURNING 1)"                             \
    " SELECT count (*) FROM ins"
// clang-format on
//  Partitions are checked this often.
#define S_PARTITIONS_EVERY_MS (3600 * 1000)
//  A batch the database refused with an SQL error is tried again after this.
#define S_SQL_RETRY_MS 5000
//  A spool replay takes at most this many bytes per COPY.
#define S_REPLAY_MAX_BYTES (8 * 1024 * 1024)
//  Batches' worth of records kept filling while the previous batch is in
//  the database, before they go to the spool instead.
#define S_WAIT_BATCHES 8
//  Log lines about drops: at most one this often.
#define S_LOG_EVERY_MS 10000

//  A batch: rows, and the requests to acknowledge once they are durable.
typedef struct {
    char *rows;              //  COPY text rows
    size_t len;              //  bytes used
    size_t cap;              //  bytes allocated
    uint32_t records;        //  rows in it
    aigw_job_t **jobs;       //  requests held
    aigw_envelope_t **envs;  //  their envelopes
    size_t count;            //  entries in jobs and envs
    size_t jobs_cap;         //  allocated
    int64_t started_ms;      //  when its first record came
} s_batch_t;

//  The actor's figures in the process registry (aigw_stats), which the
//  edge's /metrics prints in `aigw run` and `aigw actor usage
//  --metrics-port N` serves alone.
typedef struct {
    aigw_stat_t *spool_bytes;     //  spool depth, bytes
    aigw_stat_t *spool_records;   //  spool depth, records
    aigw_stat_t *batches_ok;      //  batches committed
    aigw_stat_t *batches_failed;  //  batches the database refused or did not answer
    aigw_stat_t *batch_seconds;   //  COPY sent to answered
    aigw_stat_t *written;         //  records committed as new rows
    aigw_stat_t *duplicate;       //  records committed that were there already
    aigw_stat_t *spooled;         //  records sent to the spool
    aigw_stat_t *dropped;         //  records dropped: the spool was full or failed
} s_stats_t;

//  Bounds of the batch latency histogram, seconds.
static const double s_batch_bounds[]
    = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

typedef struct {
    const aigw_config_t *config;
    aigw_pgconn_t *db;        //  NULL without a database
    aigw_spool_t *spool;      //  NULL when it could not open
    s_batch_t filling;        //  records coming in
    s_batch_t writing;        //  the batch in the database now (count 0: none)
    bool replaying;           //  writing is spool frames
    uint32_t replay_frames;   //  frames it covers
    char *replay_rows;        //  their bytes
    size_t replay_len;        //  bytes
    uint64_t replay_records;  //  records in them
    bool partitions_busy;     //  the partitions statement runs
    int64_t partitions_at;    //  when to run it next
    int64_t retry_at;         //  no COPY before this (after an SQL error)
    uint64_t written;         //  records committed
    uint64_t spooled;         //  records sent to the spool
    uint64_t dropped;         //  records dropped: the spool was full or failed
    uint64_t invalid;         //  records without a valid record id
    int64_t logged_at;        //  last drop log line
    int64_t copy_us;          //  when the COPY in the database now was sent
    s_stats_t stats;          //  the figures /metrics shows
} self_t;

//  ---------------------------------------------------------------------
//  Figures

static void
s_stats_init (s_stats_t *st)
{
    const char *records
        = "Usage records by what became of them: written to the database, duplicate (sent "
          "again and there already), spooled while it was away or slow, dropped (the spool "
          "was full).";
    const char *batches = "Usage batches (COPY) by result.";
    st->spool_bytes = aigw_stats_gauge ("aigw_usage_spool_bytes", "",
                                        "Bytes in the usage spool not yet replayed.");
    st->spool_records = aigw_stats_gauge ("aigw_usage_spool_records", "",
                                          "Records in the usage spool not yet replayed.");
    st->batches_ok = aigw_stats_counter ("aigw_usage_batches_total", "result=\"written\"", batches);
    st->batches_failed
        = aigw_stats_counter ("aigw_usage_batches_total", "result=\"failed\"", batches);
    st->batch_seconds = aigw_stats_histogram (
        "aigw_usage_batch_duration_seconds", "",
        "Time from sending a usage batch to the database to its answer.", s_batch_bounds,
        (int) (sizeof s_batch_bounds / sizeof s_batch_bounds[0]), 1e6);
    st->written = aigw_stats_counter ("aigw_usage_records_total", "result=\"written\"", records);
    st->duplicate
        = aigw_stats_counter ("aigw_usage_records_total", "result=\"duplicate\"", records);
    st->spooled = aigw_stats_counter ("aigw_usage_records_total", "result=\"spooled\"", records);
    st->dropped = aigw_stats_counter ("aigw_usage_records_total", "result=\"dropped\"", records);
}

//  The spool's depth into the figures, after it changed.
static void
s_stats_spool (self_t *self)
{
    aigw_stat_set (self->stats.spool_bytes,
                   self->spool ? (int64_t) aigw_spool_bytes (self->spool) : 0);
    aigw_stat_set (self->stats.spool_records,
                   self->spool ? (int64_t) aigw_spool_records (self->spool) : 0);
}

//  ---------------------------------------------------------------------
//  Rows

static void
s_grow (char **buf, size_t *len, size_t *cap, size_t more)
{
    if (*len + more + 1 <= *cap)
        return;
    size_t want = *cap ? *cap : 4096;
    while (want < *len + more + 1)
        want *= 2;
    char *grown = realloc (*buf, want);
    assert (grown);
    *buf = grown;
    *cap = want;
}

//  The time each stage spent, as a JSON object of microseconds, into BUF;
//  NULL when none is known. The record's route holds the request's stages
//  before "usage" (http-edge), stage_us their times.
static const char *
s_stages (const aigw_envelope_t *r, char *buf, size_t size)
{
    size_t n = 0;
    for (int hop = 0; hop < r->route_len && hop < AIGW_ROUTE_MAX; hop++) {
        const char *name = r->route[hop];
        int64_t spent = r->stage_us[2 * hop + 1];
        if (!name || streq (name, "usage") || !r->stage_us[2 * hop])
            continue;
        //  Stage names are the runtime's own: letters and dashes.
        int w = snprintf (buf + n, size - n, "%s\"%.*s\": %" PRId64, n ? ", " : "{",
                          S_STAGE_NAME_MAX, name, spent > 0 ? spent : 0);
        if (w < 0 || (size_t) w >= size - n - 2)
            break;
        n += (size_t) w;
    }
    if (!n)
        return NULL;
    buf[n++] = '}';
    buf[n] = 0;
    return buf;
}

//  Upstream attempts on a model other than the one asked (envelope.md 2b).
static int64_t
s_fallbacks (const aigw_envelope_t *r)
{
    int64_t count = 0;
    for (const char *line = r->upstream; line && *line;) {
        const char *eol = strchr (line, '\n');
        size_t len = eol ? (size_t) (eol - line) : strlen (line);
        //  The model is the sixth field, after five tabs.
        const char *model = line;
        for (int tabs = 0; tabs < 5 && model; tabs++) {
            model = memchr (model, '\t', len - (size_t) (model - line));
            model = model ? model + 1 : NULL;
        }
        size_t model_len = model ? len - (size_t) (model - line) : 0;
        if (model && r->model
            && (model_len != strlen (r->model) || memcmp (model, r->model, model_len) != 0))
            count++;
        line = eol ? eol + 1 : NULL;
    }
    return count;
}

//  Append TEXT as one COPY text field (NULL: \N), escaped, then SEP.
static void
s_field (char **buf, size_t *len, size_t *cap, const char *text, char sep)
{
    if (!text) {
        s_grow (buf, len, cap, 3);
        memcpy (*buf + *len, "\\N", 2);
        *len += 2;
    }
    else {
        size_t n = strlen (text);
        s_grow (buf, len, cap, 2 * n + 1);
        for (size_t i = 0; i < n; i++) {
            char c = text[i];
            const char *esc = c == '\\'   ? "\\\\"
                              : c == '\t' ? "\\t"
                              : c == '\n' ? "\\n"
                              : c == '\r' ? "\\r"
                                          : NULL;
            if (esc) {
                memcpy (*buf + *len, esc, 2);
                *len += 2;
            }
            else
                (*buf)[(*len)++] = c;
        }
    }
    (*buf)[(*len)++] = sep;
}

static void
s_number (char **buf, size_t *len, size_t *cap, int64_t value, bool null, char sep)
{
    char text[32];
    snprintf (text, sizeof text, "%" PRId64, value);
    s_field (buf, len, cap, null ? NULL : text, sep);
}

//  The record's content document, or NULL: only for a request whose
//  tenant keeps prompts and answers (sc) and whose edge sent one. The
//  edge builds it with a JSON library; it is checked again here because
//  one value PostgreSQL refuses would hold up its whole batch, and jsonb
//  takes no \u0000, which JSON allows (jansson refuses it by default).
static const char *
s_content (const aigw_envelope_t *r)
{
    if (!r->store_content || !r->body_len || !r->body || r->body[r->body_len] != 0
        || strlen (r->body) != r->body_len)
        return NULL;
    json_t *doc = json_loadb (r->body, r->body_len, 0, NULL);
    bool valid = json_is_object (doc);
    json_decref (doc);
    if (!valid)
        aigw_warn ("usage: record %s: content is not a JSON object; not kept", r->record_id);
    return valid ? r->body : NULL;
}

static const char *
s_endpoint (int kind)
{
    switch (kind) {
        case AIGW_KIND_CHAT: return "/v1/chat/completions";
        case AIGW_KIND_MESSAGES: return "/v1/messages";
        case AIGW_KIND_RESPONSES: return "/v1/responses";
        case AIGW_KIND_EMBEDDINGS: return "/v1/embeddings";
        case AIGW_KIND_MODELS: return "/v1/models";
        default: return "other";
    }
}

int
aigw_usage_row (const aigw_envelope_t *r, char **buf, size_t *len, size_t *cap)
{
    if (!aigw_text_uuid_valid (r->record_id))
        return -1;
    char ts[48];
    time_t secs = (time_t) (r->started_ms / 1000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    size_t n = strftime (ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf (ts + n, sizeof ts - n, ".%03d+00", (int) (r->started_ms % 1000));
    char cost[40];
    int64_t nusd = r->cost_nusd > 0 ? r->cost_nusd : 0;
    snprintf (cost, sizeof cost, "%" PRId64 ".%09" PRId64, nusd / 1000000000, nusd % 1000000000);
    s_field (buf, len, cap, ts, '\t');
    s_field (buf, len, cap, r->record_id, '\t');
    s_field (buf, len, cap, r->id ? r->id : "", '\t');
    s_field (buf, len, cap, r->tenant_id, '\t');
    s_field (buf, len, cap, r->tenant, '\t');
    s_field (buf, len, cap, r->key_id, '\t');
    s_field (buf, len, cap, r->key_name, '\t');
    s_field (buf, len, cap, r->principal_type, '\t');
    s_field (buf, len, cap, r->model, '\t');
    s_field (buf, len, cap, r->provider, '\t');
    s_field (buf, len, cap, r->provider_kind, '\t');
    s_field (buf, len, cap, s_endpoint (r->kind), '\t');
    s_field (buf, len, cap, r->stream ? "t" : "f", '\t');
    s_number (buf, len, cap, r->status, false, '\t');
    s_field (buf, len, cap, r->err_type, '\t');
    s_field (buf, len, cap, r->err_code, '\t');
    s_number (buf, len, cap, r->tokens_in > 0 ? r->tokens_in : 0, false, '\t');
    s_number (buf, len, cap, r->tokens_out > 0 ? r->tokens_out : 0, false, '\t');
    s_number (buf, len, cap, r->tokens_cached > 0 ? r->tokens_cached : 0, false, '\t');
    s_field (buf, len, cap, cost, '\t');
    s_number (buf, len, cap, r->latency_ms > 0 && r->latency_ms < INT32_MAX ? r->latency_ms : 0,
              false, '\t');
    s_number (buf, len, cap, r->first_ms, r->first_ms < 0 || r->first_ms >= INT32_MAX, '\t');
    s_field (buf, len, cap, r->cache_status, '\t');
    s_number (buf, len, cap, r->attempts <= INT32_MAX ? r->attempts : 0, false, '\t');
    char stages[AIGW_ROUTE_MAX * (S_STAGE_NAME_MAX + 24) + 4];
    s_field (buf, len, cap, s_stages (r, stages, sizeof stages), '\t');
    s_field (buf, len, cap, r->verdict, '\t');
    s_number (buf, len, cap, s_fallbacks (r), false, '\t');
    char trace_id[33];
    bool traced = r->traceparent && strlen (r->traceparent) == AIGW_TRACEPARENT_LEN;
    if (traced) {
        memcpy (trace_id, r->traceparent + 3, 32);
        trace_id[32] = 0;
    }
    s_field (buf, len, cap, traced ? trace_id : NULL, '\t');
    s_field (buf, len, cap, s_content (r), '\n');
    return 0;
}

//  What a row of FIELDS fields written by an older aigw lacks: the
//  defaults of the columns added since, or NULL for a row of today.
static const char *
s_row_tail (size_t fields)
{
    if (fields == S_ROW_FIELDS_V1)
        return "\t\\N\t\\N\t0\t\\N\t\\N";  //  006's and 008's
    if (fields == S_ROW_FIELDS_V2)
        return "\t\\N";  //  008's
    return NULL;
}

//  ROWS (*LEN bytes of COPY text, rows ended by newlines) with every row
//  written before 006 or 008 given the newer columns' defaults, so a
//  spool made by an older aigw replays. ROWS is replaced when it grows.
static void
s_rows_upgrade (char **rows, size_t *len)
{
    size_t grow = 0;
    for (size_t at = 0, fields = 1; at < *len; at++)
        if ((*rows)[at] == '\t')
            fields++;
        else if ((*rows)[at] == '\n') {
            const char *tail = s_row_tail (fields);
            grow += tail ? strlen (tail) : 0;
            fields = 1;
        }
    if (!grow)
        return;
    size_t cap = *len + grow + 1, out = 0;
    char *grown = malloc (cap);
    assert (grown);
    size_t start = 0, fields = 1;
    for (size_t at = 0; at < *len; at++) {
        if ((*rows)[at] == '\t')
            fields++;
        else if ((*rows)[at] == '\n') {
            memcpy (grown + out, *rows + start, at - start);
            out += at - start;
            const char *tail = s_row_tail (fields);
            if (tail) {
                memcpy (grown + out, tail, strlen (tail));
                out += strlen (tail);
            }
            grown[out++] = '\n';
            start = at + 1;
            fields = 1;
        }
    }
    grown[out] = 0;
    free (*rows);
    *rows = grown;
    *len = out;
}

//  ---------------------------------------------------------------------
//  Batches

//  A batch's size against usage.batch_records: its rows, or its held
//  requests when more (a request may hold many records, or none valid).
static inline size_t
s_batch_size (const s_batch_t *b)
{
    return b->records > b->count ? b->records : b->count;
}

static void
s_batch_hold (s_batch_t *b, aigw_job_t *job, aigw_envelope_t *env)
{
    if (b->count == b->jobs_cap) {
        b->jobs_cap = b->jobs_cap ? 2 * b->jobs_cap : 256;
        b->jobs = realloc (b->jobs, b->jobs_cap * sizeof *b->jobs);
        b->envs = realloc (b->envs, b->jobs_cap * sizeof *b->envs);
        assert (b->jobs && b->envs);
    }
    b->jobs[b->count] = job;
    b->envs[b->count] = env;
    b->count++;
}

//  The batch's records are durable (or dropped, counted): answer each
//  request, and empty the batch.
static void
s_batch_ack (s_batch_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        aigw_envelope_t *env = b->envs[i];
        env->status = 204;
        env->last = true;
        aigw_stage_pass (&b->jobs[i], &env);
    }
    b->count = 0;
    b->len = 0;
    b->records = 0;
    b->started_ms = 0;
}

static void
s_batch_free (s_batch_t *b)
{
    //  Unacknowledged requests are dropped: their senders send them again.
    for (size_t i = 0; i < b->count; i++) {
        aigw_envelope_destroy (&b->envs[i]);
        aigw_job_destroy (&b->jobs[i]);
    }
    free (b->rows);
    free (b->jobs);
    free (b->envs);
    memset (b, 0, sizeof *b);
}

//  Move B's rows into the spool and answer its requests.
static void
s_spool_batch (self_t *self, s_batch_t *b)
{
    if (b->records) {
        int rc = self->spool ? aigw_spool_append (self->spool, b->rows, b->len, b->records) : -1;
        if (rc == 0) {
            self->spooled += b->records;
            aigw_stat_add (self->stats.spooled, b->records);
            s_stats_spool (self);
        }
        else {
            self->dropped += b->records;
            aigw_stat_add (self->stats.dropped, b->records);
            int64_t now = aigw_now_ms ();
            if (now - self->logged_at >= S_LOG_EVERY_MS) {
                aigw_error ("usage: %s: %" PRIu64 " records dropped so far",
                            rc == 1 ? "the spool is full" : "the spool cannot be written",
                            self->dropped);
                self->logged_at = now;
            }
        }
    }
    s_batch_ack (b);
}

//  ---------------------------------------------------------------------
//  Database

static void s_pump (self_t *self);

static void
s_partitions_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    self_t *self = arg;
    self->partitions_busy = false;
    if (status == AIGW_PGCONN_OK && PQresultStatus (result) == PGRES_TUPLES_OK) {
        self->partitions_at = aigw_now_ms () + S_PARTITIONS_EVERY_MS;
        if (atoi (PQgetvalue (result, 0, 0)) > 0)
            aigw_info ("usage: %s daily partitions made", PQgetvalue (result, 0, 0));
    }
    else {
        if (result)
            aigw_warn ("usage: partitions: %s", PQresultErrorMessage (result));
        self->partitions_at = aigw_now_ms () + S_SQL_RETRY_MS;
    }
    PQclear (result);
}

//  A batch of RECORDS came back from the database: committed when OK,
//  NEW of them as new rows (the rest were there: sent again after an
//  acknowledgement was lost, or replayed from the spool).
static void
s_stats_batch (self_t *self, bool ok, uint64_t records, uint64_t fresh)
{
    aigw_stat_observe (self->stats.batch_seconds, zclock_usecs () - self->copy_us);
    aigw_stat_add (ok ? self->stats.batches_ok : self->stats.batches_failed, 1);
    if (ok) {
        fresh = fresh < records ? fresh : records;
        aigw_stat_add (self->stats.written, (int64_t) fresh);
        aigw_stat_add (self->stats.duplicate, (int64_t) (records - fresh));
    }
}

static void
s_copy_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    self_t *self = arg;
    bool ok = status == AIGW_PGCONN_OK && PQresultStatus (result) == PGRES_TUPLES_OK
              && PQntuples (result) == 1;
    uint64_t records = self->replaying ? self->replay_records : self->writing.records;
    s_stats_batch (self, ok, records, ok ? strtoull (PQgetvalue (result, 0, 0), NULL, 10) : 0);
    if (self->replaying) {
        if (ok) {
            self->written += self->replay_records;
            aigw_spool_consume (self->spool, self->replay_frames);
            s_stats_spool (self);
            if (aigw_spool_frames (self->spool) == 0)
                aigw_info ("usage: the spool is replayed");
        }
        free (self->replay_rows);
        self->replay_rows = NULL;
        self->replaying = false;
    }
    else if (ok) {
        self->written += self->writing.records;
        s_batch_ack (&self->writing);
    }
    else
        //  Away, slow or refused: the records wait in the spool.
        s_spool_batch (self, &self->writing);
    if (!ok && status == AIGW_PGCONN_OK) {
        aigw_warn ("usage: a batch was refused: %s; trying again in %d ms",
                   result ? PQresultErrorMessage (result) : "no result", S_SQL_RETRY_MS);
        self->retry_at = aigw_now_ms () + S_SQL_RETRY_MS;
    }
    PQclear (result);
}

static void
s_db_up (void *arg)
{
    self_t *self = arg;
    self->partitions_at = 0;
}

//  Move what is due: a full or old batch to the database or the spool, a
//  spool replay, the partitions.
static void
s_pump (self_t *self)
{
    int64_t now = aigw_now_ms ();
    s_batch_t *f = &self->filling;
    bool due = f->count
               && (s_batch_size (f) >= (size_t) self->config->usage_batch_records
                   || now - f->started_ms >= self->config->usage_batch_ms);
    bool idle = self->db && aigw_pgconn_state (self->db) == AIGW_PGCONN_IDLE && !self->writing.count
                && !self->replaying && !self->partitions_busy;
    if (idle && now >= self->partitions_at) {
        char ahead[16], keep[16];
        snprintf (ahead, sizeof ahead, "%d", self->config->usage_partitions_ahead_days);
        snprintf (keep, sizeof keep, "%d", self->config->usage_retention_days);
        const char *params[] = {ahead, keep};
        if (aigw_pgconn_send (self->db, "SELECT aigw_usage_partitions ($1::int, $2::int)", 2,
                              params, now + self->config->usage_copy_timeout_ms, s_partitions_done,
                              self, now)
            == 0) {
            self->partitions_busy = true;
            idle = false;
        }
    }
    bool spooled = self->spool && aigw_spool_frames (self->spool);
    if (idle && now >= self->retry_at && spooled) {
        //  The spool first, oldest frames first, several per COPY.
        self->copy_us = zclock_usecs ();
        if (aigw_spool_peek (self->spool, S_REPLAY_MAX_BYTES, &self->replay_rows, &self->replay_len,
                             &self->replay_frames, &self->replay_records)
                == 0
            && (s_rows_upgrade (&self->replay_rows, &self->replay_len), true)
            && aigw_pgconn_copy (self->db, S_COPY_SQL, self->replay_rows, self->replay_len,
                                 now + self->config->usage_copy_timeout_ms, s_copy_done, self, now)
                   == 0) {
            self->replaying = true;
            idle = false;
        }
        else {
            free (self->replay_rows);
            self->replay_rows = NULL;
        }
    }
    if (!due)
        return;
    if (idle && now >= self->retry_at && !spooled) {
        //  Swap: the filled batch is written while a new one fills.
        s_batch_t b = self->writing;
        self->writing = *f;
        *f = b;
        self->copy_us = zclock_usecs ();
        if (aigw_pgconn_copy (self->db, S_COPY_SQL, self->writing.rows, self->writing.len,
                              now + self->config->usage_copy_timeout_ms, s_copy_done, self, now)
            != 0)
            s_spool_batch (self, &self->writing);
        return;
    }
    //  The database is writing the previous batch: this one keeps filling
    //  (it goes next, bigger) while it stays within bounds; else, or with
    //  the database away or behind the spool, to the spool.
    bool up = self->db && aigw_pgconn_state (self->db) >= AIGW_PGCONN_IDLE;
    if (up && !spooled && (self->writing.count || self->partitions_busy)
        && s_batch_size (f) < S_WAIT_BATCHES * (size_t) self->config->usage_batch_records
        && now - f->started_ms < self->config->usage_copy_timeout_ms)
        return;
    s_spool_batch (self, f);
}

//  ---------------------------------------------------------------------
//  Stage

static void *
s_stage_new (aigw_host_t *host, const aigw_config_t *config)
{
    self_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = config;
    s_stats_init (&self->stats);
    char err[256];
    self->spool
        = aigw_spool_new (config->usage_spool_path, config->usage_spool_max_bytes, err, sizeof err);
    if (!self->spool)
        aigw_error ("%s: records will be dropped while the database is away", err);
    s_stats_spool (self);
    if (config->database_url && *config->database_url) {
        aigw_pgconn_settings_t settings
            = {.name = "usage",
               .application_name = "aigw-usage",
               .connect_timeout_ms
               = config->db_connect_timeout_ms > 0 ? config->db_connect_timeout_ms : 3000,
               .statement_timeout_ms = 0,
               .backoff_min_ms = 100,
               .backoff_max_ms = 2000};
        aigw_pgconn_events_t events = {s_db_up, NULL, NULL, self};
        self->db = aigw_pgconn_new (config->database_url, &settings, &events);
        if (!self->db)
            aigw_error ("usage: the database URL cannot be used; records go to the spool");
    }
    else
        aigw_warn ("usage: no database configured; records go to the spool");
    return self;
}

static void
s_stage_destroy (void **state_p)
{
    self_t *self = *state_p;
    if (!self)
        return;
    //  A batch in the database when we stop: its requests were not
    //  acknowledged, so their senders send them again.
    aigw_pgconn_destroy (&self->db);
    //  What was filling goes to the spool, unacknowledged (the host is
    //  going: its senders send those records again, harmlessly).
    s_batch_t *f = &self->filling;
    if (f->records && self->spool && aigw_spool_append (self->spool, f->rows, f->len, f->records))
        aigw_warn ("usage: %u records not spooled at stop", f->records);
    s_batch_free (&self->filling);
    s_batch_free (&self->writing);
    free (self->replay_rows);
    aigw_spool_destroy (&self->spool);
    free (self);
    *state_p = NULL;
}

//  One record into the batch filling (its job is held by the caller).
static void
s_take_record (self_t *self, const aigw_envelope_t *record)
{
    s_batch_t *f = &self->filling;
    if (aigw_usage_row (record, &f->rows, &f->len, &f->cap) == 0) {
        if (!f->records)
            f->started_ms = aigw_now_ms ();
        f->records++;
    }
    else
        self->invalid++;
}

static void
s_stage_take (void *state, aigw_job_t *job, aigw_envelope_t *env)
{
    self_t *self = state;
    s_batch_t *f = &self->filling;
    if (env->kind == AIGW_KIND_USAGE) {
        //  The edge's batch: every record goes into the batch filling, so
        //  the one acknowledgement waits for them all.
        size_t pos = 0, bad = 0;
        char err[128], first[128] = "";
        aigw_envelope_t *record;
        while ((record = aigw_envelope_batch_next (env, &pos, err, sizeof err)) || err[0]) {
            if (record)
                s_take_record (self, record);
            else {
                bad++;
                if (!first[0])
                    snprintf (first, sizeof first, "%s", err);
            }
            aigw_envelope_destroy (&record);
        }
        if (bad) {
            self->invalid += bad;
            aigw_warn ("usage: a batch held %zu bad records (%s)", bad, first);
        }
    }
    else
        s_take_record (self, env);
    //  Held until the batch is durable; the body is not needed to answer.
    aigw_envelope_take_body (env, NULL, 0);
    s_batch_hold (f, job, env);
    if (!f->started_ms)
        f->started_ms = aigw_now_ms ();
    if (s_batch_size (f) >= (size_t) self->config->usage_batch_records)
        s_pump (self);
}

static int
s_stage_pollitems (void *state, zmq_pollitem_t *items, int max)
{
    self_t *self = state;
    return max >= 1 && aigw_pgconn_pollitem (self->db, &items[0]) ? 1 : 0;
}

static int
s_stage_timeout (void *state)
{
    self_t *self = state;
    int64_t now = aigw_now_ms ();
    int64_t due = -1;
    if (self->filling.count) {
        //  While the previous batch is in the database, its answer (on the
        //  socket) moves the next one; only the bound on waiting is a timer.
        bool waiting = self->writing.count || self->replaying || self->partitions_busy;
        int64_t at
            = self->filling.started_ms
              + (waiting ? self->config->usage_copy_timeout_ms : self->config->usage_batch_ms)
              - now;
        due = at < 0 ? 0 : at;
    }
    if (self->spool && aigw_spool_frames (self->spool)) {
        int64_t at = self->retry_at - now;
        at = at < 100 ? 100 : at;
        if (due < 0 || at < due)
            due = at;
    }
    if (self->db) {
        int t = aigw_pgconn_timeout (self->db, now);
        if (t >= 0 && (due < 0 || t < due))
            due = t;
        if (self->partitions_at > now) {
            int64_t at = self->partitions_at - now;
            if (due < 0 || at < due)
                due = at;
        }
    }
    return due < 0 ? -1 : due > INT_MAX ? INT_MAX : (int) due;
}

static void
s_stage_process (void *state, zmq_pollitem_t *items, int count)
{
    self_t *self = state;
    if (self->db)
        aigw_pgconn_process (self->db, count ? items[0].revents : 0, aigw_now_ms ());
    s_pump (self);
}

const aigw_stage_def_t aigw_usage_stage = {
    .name = "usage",
    .replay_safe = true,
    .state_new = s_stage_new,
    .state_destroy = s_stage_destroy,
    .take = s_stage_take,
    .pollitems = s_stage_pollitems,
    .timeout = s_stage_timeout,
    .process = s_stage_process,
};

//  usage: batching and the spool (the keywords live beside their use).
static const aigw_config_keyword_t s_usage_keywords[] = {
    AIGW_CONFIG_KW_BOOL ("enabled", aigw_config_t, usage_enabled, true),
    AIGW_CONFIG_KW_NUMBER ("batch_records", AIGW_CONFIG_INT, aigw_config_t, usage_batch_records, 1,
                           50000, AIGW_USAGE_DEFAULT_BATCH_RECORDS),
    AIGW_CONFIG_KW_NUMBER ("batch_ms", AIGW_CONFIG_INT64, aigw_config_t, usage_batch_ms, 1, 60000,
                           AIGW_USAGE_DEFAULT_BATCH_MS),
    AIGW_CONFIG_KW_STRING ("spool_path", aigw_config_t, usage_spool_path, NULL,
                           AIGW_USAGE_DEFAULT_SPOOL_PATH, .env = "AIGW_USAGE_SPOOL"),
    AIGW_CONFIG_KW_NUMBER ("spool_max_bytes", AIGW_CONFIG_SIZE, aigw_config_t,
                           usage_spool_max_bytes, 65536, (int64_t) 1 << 40,
                           (int64_t) AIGW_USAGE_DEFAULT_SPOOL_MAX_BYTES),
    AIGW_CONFIG_KW_NUMBER ("partitions_ahead_days", AIGW_CONFIG_INT, aigw_config_t,
                           usage_partitions_ahead_days, 0, 366, AIGW_USAGE_DEFAULT_AHEAD_DAYS),
    AIGW_CONFIG_KW_NUMBER ("retention_days", AIGW_CONFIG_INT, aigw_config_t, usage_retention_days,
                           0, 36600, AIGW_USAGE_DEFAULT_RETENTION_DAYS),
    AIGW_CONFIG_KW_NUMBER ("copy_timeout_ms", AIGW_CONFIG_INT64, aigw_config_t,
                           usage_copy_timeout_ms, 100, 600000, AIGW_USAGE_DEFAULT_COPY_TIMEOUT_MS),
    AIGW_CONFIG_KW_END};
AIGW_CONFIG_KEYWORDS ("usage", s_usage_keywords)

//  ---------------------------------------------------------------------
//  Selftest: rows (the database paths run in the integration suite).

void
aigw_usage_test (bool verbose)
{
    aigw_envelope_t *r = aigw_envelope_new ();
    char *buf = NULL;
    size_t len = 0, cap = 0;
    assert (aigw_usage_row (r, &buf, &len, &cap) == -1);  //  no record id
    aigw_envelope_set (&r->record_id, "0e9f1c2a-4b7d-4c1e-9a2f-3b8c7d6e5f4");
    assert (aigw_usage_row (r, &buf, &len, &cap) == -1);  //  short
    aigw_envelope_set (&r->record_id, "0e9f1c2a-4b7d-4c1e-9a2f-3b8c7d6e5f40");
    aigw_envelope_set (&r->id, "req\t1\\x\n");
    aigw_envelope_set (&r->model, "gpt-4o");
    aigw_envelope_set (&r->provider, "oai");
    r->kind = AIGW_KIND_CHAT;
    r->stream = true;
    r->status = 200;
    r->started_ms = 86400000LL + 1234;
    r->tokens_in = 12;
    r->tokens_out = 3;
    r->cost_nusd = 1234567890123LL;
    r->latency_ms = 42;
    r->attempts = 2;
    assert (aigw_usage_row (r, &buf, &len, &cap) == 0);
    buf[len] = 0;
    const char *want = "1970-01-02 00:00:01.234+00\t0e9f1c2a-4b7d-4c1e-9a2f-3b8c7d6e5f40\t"
                       "req\\t1\\\\x\\n\t\\N\t\\N\t\\N\t\\N\t\\N\tgpt-4o\toai\t\\N\t"
                       "/v1/chat/completions\tt\t200\t\\N\t\\N\t12\t3\t0\t1234.567890123\t42\t"
                       "\\N\t\\N\t2\t\\N\t\\N\t0\t\\N\t\\N\n";
    if (verbose || strcmp (buf, want))
        printf ("\n%s\n%s", buf, want);
    assert (streq (buf, want));

    //  Stage times by name, the verdict, fallbacks, the trace id.
    aigw_envelope_set (&r->route[0], "auth");
    aigw_envelope_set (&r->route[1], "guardrail");
    aigw_envelope_set (&r->route[2], "provider");
    aigw_envelope_set (&r->route[3], "usage");
    r->route_len = 4;
    r->stage_us[0] = 1000, r->stage_us[1] = 41;
    r->stage_us[4] = 1100, r->stage_us[5] = 900;  //  guardrail never ran
    r->stage_us[6] = 5000, r->stage_us[7] = 3;
    aigw_envelope_set (&r->verdict, "block:deny_list:x");
    aigw_envelope_set (&r->upstream, "1\t2\t500\t0123456789abcdef\tdep-a\tgpt-4o\n"
                                     "3\t4\t200\t0123456789abcdee\tdep-b\tgpt-4o-mini\n"
                                     "garbage\n");
    aigw_envelope_set (&r->traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    len = 0;
    assert (aigw_usage_row (r, &buf, &len, &cap) == 0);
    buf[len] = 0;
    assert (strstr (buf, "\t2\t{\"auth\": 41, \"provider\": 900}\tblock:deny_list:x\t1\t"
                         "4bf92f3577b34da6a3ce929d0e0e4736\t\\N\n"));

    //  Content: only with sc and a JSON object; escaped as any field.
    const char doc[] = "{\"request\": {\"a\": \"x\\ty\"}, \"response\": \"data: 1\\n\\n\","
                       " \"truncated\": false}";
    aigw_envelope_set_body (r, doc, strlen (doc));
    len = 0;
    assert (aigw_usage_row (r, &buf, &len, &cap) == 0);
    buf[len] = 0;
    assert (strstr (buf, "\t\\N\n"));  //  no sc: never kept
    r->store_content = true;
    len = 0;
    assert (aigw_usage_row (r, &buf, &len, &cap) == 0);
    buf[len] = 0;
    assert (strstr (buf, "\t{\"request\": {\"a\": \"x\\\\ty\"}, \"response\": "
                         "\"data: 1\\\\n\\\\n\", \"truncated\": false}\n"));
    const char bad[] = "{\"request\": \"a\\u0000b\"}";
    aigw_envelope_set_body (r, bad, strlen (bad));
    len = 0;
    assert (aigw_usage_row (r, &buf, &len, &cap) == 0);
    buf[len] = 0;
    assert (strstr (buf, "\t\\N\n"));  //  jsonb would refuse it: not kept

    //  A spool's rows from before 006 get the newer columns' defaults.
    char *rows
        = strdup ("a\tb\tc\n"
                  "1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t13\t14\t15\t16\t17\t18\t19\t20\t21\t22"
                  "\t23\t24\n");
    size_t rows_len = strlen (rows);
    s_rows_upgrade (&rows, &rows_len);
    assert (rows_len == strlen (rows));
    assert (strstr (rows, "a\tb\tc\n1\t") == rows);
    assert (strstr (rows, "\t23\t24\t\\N\t\\N\t0\t\\N\t\\N\n"));
    free (rows);
    //  And rows from before 008, their content.
    rows = strdup ("1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t13\t14\t15\t16\t17\t18\t19\t20\t21"
                   "\t22\t23\t24\t25\t26\t27\t28\n");
    rows_len = strlen (rows);
    s_rows_upgrade (&rows, &rows_len);
    assert (streq (rows, "1\t2\t3\t4\t5\t6\t7\t8\t9\t10\t11\t12\t13\t14\t15\t16\t17\t18\t19\t20"
                         "\t21\t22\t23\t24\t25\t26\t27\t28\t\\N\n"));
    free (rows);
    free (buf);
    aigw_envelope_destroy (&r);
}
