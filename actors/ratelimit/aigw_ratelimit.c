/*  aigw_ratelimit: the rate-limit stage, owner of its tenants' counters. */
#include "aigw_ratelimit.h"
#include "aigw_dbwatch.h"
#include "aigw_held.h"
#include "aigw_json.h"
#include "aigw_log.h"
#include "aigw_pgconn.h"
#include "aigw_rlengine.h"
#include "aigw_tokens.h"

#include <jansson.h>
#include <unistd.h>

//  A shard idle this long is forgotten (with a database: its snapshot
//  brings it back).
#define S_IDLE_MS (15 * 60 * 1000)
//  Shards checked for ownership per tick: the sweep walks all of them in
//  turns, so a huge owner spends little per second on it.
#define S_SWEEP_PER_TICK 20000
//  Most counters in one snapshot statement.
#define S_SNAPSHOT_ROWS 20000
//  Bound on one load or snapshot statement.
#define S_STATEMENT_MS 5000
//  Budgets rebuild from the roll-ups of this many days back (week, month
//  and Nd periods up to it).
#define S_SPEND_DAYS 35
//  Rows of ratelimit_state whose windows are over are deleted this often
//  (and once soon after start), at most S_PRUNE_ROWS per statement.
#define S_PRUNE_MS   60000
#define S_PRUNE_ROWS 10000
//  The channel every change of models and model_deployments NOTIFYs
//  (schemas/sql/002_models.sql; the provider's catalog listens on it too).
#define S_MODELS_CHANNEL "aigw_models"

//  Snapshot: the rows into a staging table, then the newest of each
//  counter into ratelimit_state, in key order (two owners of one shard
//  during a move then queue instead of deadlocking).
// clang-format off
#define S_SNAPSHOT_SQL                                                                      \
    "CREATE TEMP TABLE IF NOT EXISTS ratelimit_staging (seq bigint, shard text, name text," \
    " win_start_ms bigint, amount bigint, amount_before bigint) ON COMMIT DELETE ROWS;"     \
    "COPY ratelimit_staging FROM STDIN;"                                                    \
    "INSERT INTO ratelimit_state AS s (tenant_id, limit_key, window_start, current,"        \
    " previous, spent_nusd)"                                                                \
    " SELECT DISTINCT ON (shard, name) shard, name, to_timestamp (win_start_ms / 1000.0),"  \
    " amount, amount_before, CASE WHEN name LIKE '4%' THEN amount ELSE 0 END"               \
    " FROM ratelimit_staging ORDER BY shard, name, seq DESC"                                \
    " ON CONFLICT (tenant_id, limit_key) DO UPDATE SET window_start = EXCLUDED.window_start," \
    " current = EXCLUDED.current, previous = EXCLUDED.previous,"                            \
    " spent_nusd = EXCLUDED.spent_nusd, updated_at = now ()"
//  A shard's counters, then its spend per key, model and day from the
//  roll-ups (a shard is a tenant id, or a key id for keys with none).
#define S_LOAD_SQL                                                                          \
    "SELECT 0, limit_key, '', '', (extract (epoch FROM window_start) * 1000)::bigint,"      \
    " current, previous FROM ratelimit_state WHERE tenant_id = $1"                          \
    " UNION ALL SELECT 1, '', key_id, model,"                                               \
    " (extract (epoch FROM bucket) * 1000)::bigint, (sum (cost_usd) * 1000000000)::bigint, 0" \
    " FROM usage_rollups WHERE period = 'day' AND bucket >= to_timestamp ($2::bigint)"      \
    " AND (tenant_id = $1 OR (tenant_id = '' AND key_id = $1))"                             \
    " GROUP BY key_id, model, bucket"
//  A row is over when its window and the next one (rpm, tpm: the next
//  reads it as its previous), its day (rpd) or its budget period ended:
//  it then reads as a zero counter (limits.md 6). The name is the
//  engine's: kind digit, level digit, then id, model and period after
//  0x1f separators. A month is taken as 31 days (kept a little longer).
#define S_PRUNE_SQL                                                                         \
    "DELETE FROM ratelimit_state WHERE ctid = ANY (ARRAY (SELECT ctid FROM ratelimit_state" \
    " WHERE window_start + CASE left (limit_key, 1)"                                        \
    " WHEN '0' THEN interval '2 minutes' WHEN '2' THEN interval '2 minutes'"                \
    " WHEN '1' THEN interval '1 day'"                                                       \
    " WHEN '4' THEN CASE split_part (limit_key, chr (31), 4)"                               \
    " WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '7 days'"                  \
    " WHEN 'month' THEN interval '31 days' WHEN '' THEN interval '31 days'"                 \
    " ELSE make_interval (days => substring (split_part (limit_key, chr (31), 4)"          \
    " FROM '^([0-9]{1,4})d@')::int) END END <= now () LIMIT 10000))"
//  The highest prices of every database model, and its fallbacks
//  (limits.md 3: price_cached_in is never above price_in).
#define S_PRICES_SQL                                                                        \
    "SELECT m.name, COALESCE (max (d.price_in), 0)::float8,"                                \
    " COALESCE (max (d.price_out), 0)::float8, array_to_json (m.fallbacks)::text"           \
    " FROM models m LEFT JOIN model_deployments d ON d.model_id = m.id GROUP BY m.id"
// clang-format on

//  A database model's highest prices (USD per million tokens).
typedef struct {
    double in;                                   //  highest price_in
    double out;                                  //  highest price_out
    int fallback_count;                          //  entries in fallbacks
    char *fallbacks[AIGW_CONFIG_MAX_FALLBACKS];  //  models tried next
} s_price_t;

//  A shard being read from the database.
typedef struct {
    char *shard;        //  its key
    aigw_held_t *held;  //  requests waiting for its counters
    bool sent;          //  its statement is in the database
} s_load_t;

typedef struct {
    const aigw_config_t *config;  //  settings (shared, read-only)
    aigw_host_t *host;            //  our host (NULL in selftests): who owns what
    aigw_rlengine_t *engine;      //  the counters
    aigw_pgconn_t *db;            //  NULL without a database
    zhashx_t *loads;              //  shard -> s_load_t waiting or running
    zlistx_t *queue;              //  s_load_t to send, oldest first
    s_load_t *loading;            //  the load in the database now
    char *snapshot;               //  COPY rows of the snapshot in the database (or to retry)
    size_t snapshot_len;          //  bytes used
    size_t snapshot_cap;          //  bytes allocated
    bool snapshot_busy;           //  the snapshot statement runs
    int64_t snapshot_at;          //  next snapshot due, Unix ms
    uint64_t row_seq;             //  order of rows in the staging table
    char *sweep;                  //  the ownership sweep's last shard, or NULL
    aigw_dbwatch_t *models;       //  the database's model prices, kept fresh; NULL without
    zhashx_t *prices;             //  database model name -> s_price_t
    int poll_db;                  //  index of db's pollitem, -1 = none
    int poll_models;              //  index of models' pollitem, -1 = none
    bool prune_busy;              //  the prune statement runs
    int64_t prune_at;             //  next prune due, Unix ms
    bool stopping;                //  being destroyed: callbacks do nothing
    int64_t (*clock) (void);      //  time source, replaceable in the selftest
} self_t;

//  ---------------------------------------------------------------------
//  Prices

static void
s_price_destroy (void **item)
{
    s_price_t *price = (s_price_t *) *item;
    if (price) {
        for (int i = 0; i < price->fallback_count; i++)
            free (price->fallbacks[i]);
        free (price);
    }
    *item = NULL;
}

//  Set database model NAME's prices in PRICES, FALLBACKS (a JSON array of
//  names, or NULL) its fallbacks.
static void
s_price_add (zhashx_t *prices, const char *name, double in, double out, const char *fallbacks)
{
    s_price_t *price = (s_price_t *) calloc (1, sizeof *price);
    assert (price);
    price->in = in;
    price->out = out;
    json_t *list = fallbacks ? json_loads (fallbacks, 0, NULL) : NULL;
    size_t i;
    json_t *item;
    json_array_foreach (list, i, item) {
        if (json_is_string (item) && price->fallback_count < AIGW_CONFIG_MAX_FALLBACKS)
            price->fallbacks[price->fallback_count++] = strdup (json_string_value (item));
    }
    json_decref (list);
    zhashx_update (prices, name, price);
}

//  A new snapshot of the database's prices replaces the old.
static void
s_prices_load (self_t *self, PGresult *result)
{
    zhashx_t *prices = zhashx_new ();
    assert (prices);
    zhashx_set_destructor (prices, s_price_destroy);
    for (int r = 0; r < PQntuples (result); r++)
        s_price_add (prices, PQgetvalue (result, r, 0), strtod (PQgetvalue (result, r, 1), NULL),
                     strtod (PQgetvalue (result, r, 2), NULL),
                     PQgetisnull (result, r, 3) ? NULL : PQgetvalue (result, r, 3));
    zhashx_destroy (&self->prices);
    self->prices = prices;
}

//  The highest prices (USD per million tokens) of MODEL's deployments and
//  of its fallbacks', into *IN and *OUT: a config-file model's, else a
//  database model's (the catalog too lets the file's name win).
static void
s_prices (self_t *self, const char *model, double *in, double *out, int depth)
{
    if (!model || depth > AIGW_CONFIG_MAX_FALLBACKS)
        return;
    const aigw_config_t *config = self->config;
    for (int i = 0; i < config->model_count; i++) {
        const aigw_config_model_t *m = &config->models[i];
        if (!m->name || strcmp (m->name, model))
            continue;
        for (int d = 0; d < m->deployment_count; d++) {
            if (m->deployments[d].price_in > *in)
                *in = m->deployments[d].price_in;
            if (m->deployments[d].price_out > *out)
                *out = m->deployments[d].price_out;
        }
        for (int f = 0; f < m->fallback_count; f++)
            s_prices (self, m->fallbacks[f], in, out, depth + 1);
        return;
    }
    s_price_t *price = self->prices ? (s_price_t *) zhashx_lookup (self->prices, model) : NULL;
    if (!price)
        return;
    if (price->in > *in)
        *in = price->in;
    if (price->out > *out)
        *out = price->out;
    for (int f = 0; f < price->fallback_count; f++)
        s_prices (self, price->fallbacks[f], in, out, depth + 1);
}

//  ---------------------------------------------------------------------
//  Decisions

//  Shard of ENV: its tenant, "*" for the master key's, else its key.
static const char *
s_shard (aigw_envelope_t *env)
{
    if (env->tenant_id && *env->tenant_id)
        return env->tenant_id;
    return env->key_id ? env->key_id : "";
}

static int64_t
s_now (self_t *self)
{
    return self->clock ();
}

//  Check ENV's limits: reserve, or answer 429.
static void
s_decide (self_t *self, aigw_envelope_t *env)
{
    int64_t now = s_now (self);
    char legacy[48];
    const char *lm = env->limits;
    const char *key_id = env->key_id ? env->key_id : "anonymous";
    if (!lm || !*lm) {
        //  No limits written (auth before AIGW-LIMITS): the key's rpm, or
        //  the default, per key, as before.
        int64_t rpm = env->rpm > 0 ? env->rpm : self->config->default_rpm;
        snprintf (legacy, sizeof legacy, "k=rpm:%lld", (long long) rpm);
        lm = legacy;
    }
    aigw_rl_request_t req
        = {s_shard (env), key_id, s_shard (env), env->model ? env->model : "", lm, 0, 0, 0};
    bool tokens = strstr (lm, "tpm:") != NULL;
    bool budget = strstr (lm, "usd:") != NULL;
    if ((tokens || budget) && env->body) {
        int format = env->kind == AIGW_KIND_EMBEDDINGS  ? AIGW_TOKENS_EMBEDDINGS
                     : env->kind == AIGW_KIND_MESSAGES  ? AIGW_TOKENS_MESSAGES
                     : env->kind == AIGW_KIND_RESPONSES ? AIGW_TOKENS_RESPONSES
                                                        : AIGW_TOKENS_CHAT;
        int64_t prompt = 0, completion = 0;
        aigw_tokens_estimate ((aigw_tokens_format_t) format, env->body, env->body_len,
                              self->config->rl_default_max_tokens, &prompt, &completion);
        req.tokens = prompt + completion;
        if (budget) {
            double in = 0, out = 0;
            s_prices (self, env->model, &in, &out, 0);
            //  USD per million tokens is nano-USD per thousandth: x 1000.
            req.nusd = (int64_t) ((double) prompt * in * 1000 + (double) completion * out * 1000
                                  + 0.999999);
        }
    }
    int64_t deadline
        = env->deadline_ms > 0 ? env->deadline_ms : now + self->config->request_timeout_ms;
    req.lease_ms = deadline + self->config->rl_settle_grace_ms;
    aigw_rl_verdict_t v;
    if (aigw_rlengine_check (self->engine, &req, now, &v)) {
        aigw_error ("ratelimit: request %s: its limits cannot be read", env->id ? env->id : "?");
        aigw_envelope_set_error (env, 500, "server_error", "limits_invalid", NULL,
                                 "The limits of this key cannot be read.");
        return;
    }
    if (v.kind < 0) {
        env->rl_limit = -1;
        return;
    }
    env->rl_limit = v.limit;
    env->rl_remaining = v.remaining;
    env->rl_reset = v.reset_s;
    aigw_envelope_set (&env->rl_kind, aigw_rlengine_kind_name (v.kind));
    if (*v.reservation)
        aigw_envelope_set (&env->reservation, v.reservation);
    if (!v.ok) {
        env->retry_after = v.retry_after;
        char message[200];
        const char *what = aigw_rlengine_kind_name (v.kind);
        const char *level = aigw_rlengine_level_name (v.level);
        if (v.kind == AIGW_RL_USD)
            snprintf (message, sizeof message,
                      "The %s budget is spent for this period; retry in %d s.", level,
                      v.retry_after);
        else
            snprintf (message, sizeof message,
                      "Rate limit of %lld (%s, %s) exceeded; retry in %d s.", (long long) v.limit,
                      what, level, v.retry_after);
        aigw_envelope_set_error (env, 429, "rate_limit_error", what, level, message);
    }
}

//  A limit's figures as JSON (limits.md 7); budgets in USD.
static json_t *
s_figure_json (const aigw_rl_figure_t *f)
{
    int64_t left = f->limit - f->used;
    if (left < 0)
        left = 0;
    json_t *o = json_object ();
    json_object_set_new (o, "kind", json_string (aigw_rlengine_kind_name (f->kind)));
    if (f->kind == AIGW_RL_USD) {
        json_object_set_new (o, "limit", json_real ((double) f->limit / 1e9));
        json_object_set_new (o, "used", json_real ((double) f->used / 1e9));
        json_object_set_new (o, "remaining", json_real ((double) left / 1e9));
        json_object_set_new (o, "period", json_string (f->period));
    }
    else {
        json_object_set_new (o, "limit", json_integer (f->limit));
        json_object_set_new (o, "used", json_integer (f->used));
        json_object_set_new (o, "remaining", json_integer (left));
    }
    json_object_set_new (o, "reset", json_integer (f->reset_s));
    return o;
}

//  GET rate-limits, forwarded by the admin actor with the target's key,
//  tenant and lm: every limit's figures, as the owner has them.
static void
s_report (self_t *self, aigw_envelope_t *env)
{
    aigw_rl_figure_t figures[AIGW_RL_LIMITS_MAX];
    const char *model = env->model ? env->model : "";
    int n = aigw_rlengine_report (self->engine, s_shard (env), env->limits ? env->limits : "",
                                  env->key_id ? env->key_id : "", s_shard (env), model,
                                  s_now (self), figures, AIGW_RL_LIMITS_MAX);
    if (n < 0) {
        aigw_envelope_set_error (env, 500, "server_error", "limits_invalid", NULL,
                                 "The limits of this key cannot be read.");
        return;
    }
    json_t *key = json_array (), *tenant = json_array (), *models = json_object ();
    for (int i = 0; i < n; i++) {
        aigw_rl_figure_t *f = &figures[i];
        if (f->level == AIGW_RL_KEY)
            json_array_append_new (key, s_figure_json (f));
        else if (f->level == AIGW_RL_TENANT)
            json_array_append_new (tenant, s_figure_json (f));
        else {
            const char *name = *f->model ? f->model : model;
            json_t *entry = json_object_get (models, name);
            if (!entry) {
                entry = json_pack ("{s:[],s:[]}", "key", "tenant");
                json_object_set_new (models, name, entry);
            }
            json_array_append_new (
                json_object_get (entry, f->level == AIGW_RL_KEY_MODEL ? "key" : "tenant"),
                s_figure_json (f));
        }
    }
    json_t *root
        = json_pack ("{s:{s:s?,s:o},s:{s:s?,s:o},s:o}", "key", "id", env->key_id, "limits", key,
                     "tenant", "id", env->tenant_id, "limits", tenant, "models", models);
    size_t len;
    char *body = aigw_json_dump (root, &len);
    if (!body) {
        aigw_envelope_set_error (env, 500, "server_error", "out_of_memory", NULL,
                                 "The report could not be written.");
        return;
    }
    aigw_envelope_take_body (env, body, len);
    aigw_envelope_set (&env->content_type, "application/json");
    env->status = 200;
    env->last = true;
}

//  A settle (one-way: nobody reads the answer). One for another
//  incarnation, a late or a second one changes nothing.
static void
s_settle (self_t *self, aigw_envelope_t *env)
{
    aigw_rlengine_settle (self->engine, env->reservation, env->tokens_in + env->tokens_out,
                          env->cost_nusd, s_now (self));
    env->status = 204;
}

//  Answer or pass ENV now that its shard is here.
static void
s_run (self_t *self, aigw_job_t *job, aigw_envelope_t *env)
{
    if (env->kind == AIGW_KIND_ADMIN)
        s_report (self, env);
    else
        s_decide (self, env);
    aigw_stage_pass (&job, &env);
}

//  ---------------------------------------------------------------------
//  Database: loads and snapshots

static void s_pump (self_t *self);

static void
s_load_free (s_load_t **load_p)
{
    s_load_t *load = *load_p;
    if (!load)
        return;
    aigw_held_destroy (&load->held);
    free (load->shard);
    free (load);
    *load_p = NULL;
}

//  LOAD's shard is here (read, or started empty): run what it held.
static void
s_load_finish (self_t *self, s_load_t *load)
{
    aigw_rlengine_add_shard (self->engine, load->shard, s_now (self));
    aigw_job_t *job;
    aigw_envelope_t *env;
    while (aigw_held_take (load->held, &job, &env))
        s_run (self, job, env);
    zhashx_delete (self->loads, load->shard);
}

static void
s_load_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    self_t *self = (self_t *) arg;
    s_load_t *load = self->loading;
    self->loading = NULL;
    if (!load || self->stopping) {
        PQclear (result);
        return;
    }
    int64_t now = s_now (self);
    aigw_rlengine_add_shard (self->engine, load->shard, now);
    if (result && PQresultStatus (result) == PGRES_TUPLES_OK) {
        for (int r = 0; r < PQntuples (result); r++) {
            int64_t win = strtoll (PQgetvalue (result, r, 4), NULL, 10);
            int64_t amount = strtoll (PQgetvalue (result, r, 5), NULL, 10);
            if (streq (PQgetvalue (result, r, 0), "0")) {
                aigw_rl_row_t row = {load->shard, PQgetvalue (result, r, 1), win, amount,
                                     strtoll (PQgetvalue (result, r, 6), NULL, 10)};
                aigw_rlengine_load (self->engine, &row, now);
            }
            else
                aigw_rlengine_spend (self->engine, load->shard, PQgetvalue (result, r, 2),
                                     PQgetvalue (result, r, 3), win, amount, now);
        }
    }
    else
        //  Counted from zero: a move now may let through what the
        //  snapshot would have held back, never more than one window.
        aigw_warn ("ratelimit: the counters of a shard could not be read (%s); starting empty",
                   result ? PQresultErrorMessage (result) : "no database");
    PQclear (result);
    s_load_finish (self, load);
    s_pump (self);
}

static void
s_snapshot_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    self_t *self = (self_t *) arg;
    self->snapshot_busy = false;
    if (self->stopping) {
        PQclear (result);
        return;
    }
    if (result && PQresultStatus (result) == PGRES_COMMAND_OK)
        self->snapshot_len = 0;
    else
        //  Kept, and sent again with the next changes (the newest row of a
        //  counter wins).
        aigw_warn ("ratelimit: snapshot failed: %s",
                   result ? PQresultErrorMessage (result) : "no database");
    PQclear (result);
    s_pump (self);
}

static void
s_prune_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    self_t *self = (self_t *) arg;
    self->prune_busy = false;
    if (self->stopping) {
        PQclear (result);
        return;
    }
    if (result && PQresultStatus (result) == PGRES_COMMAND_OK) {
        //  A full batch: more may be over, go on soon.
        if (atoi (PQcmdTuples (result)) >= S_PRUNE_ROWS)
            self->prune_at = s_now (self) + self->config->rl_snapshot_ms;
    }
    else
        aigw_warn ("ratelimit: deleting past counters failed: %s",
                   result ? PQresultErrorMessage (result) : "no database");
    PQclear (result);
    s_pump (self);
}

//  Append LEN bytes at DATA to the snapshot rows; with ESCAPE, as COPY's
//  text format quotes a value.
static void
s_copy_add (self_t *self, const char *data, size_t len, bool escape)
{
    size_t need = self->snapshot_len + 2 * len + 1;
    if (need > self->snapshot_cap) {
        size_t cap = self->snapshot_cap ? self->snapshot_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *rows = (char *) realloc (self->snapshot, cap);
        assert (rows);
        self->snapshot = rows;
        self->snapshot_cap = cap;
    }
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (escape && (c == '\\' || c == '\t' || c == '\n' || c == '\r')) {
            self->snapshot[self->snapshot_len++] = '\\';
            c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : c;
        }
        self->snapshot[self->snapshot_len++] = c;
    }
}

static void
s_snapshot_row (void *arg, const aigw_rl_row_t *row)
{
    self_t *self = (self_t *) arg;
    if (!*row->shard)
        return;  //  no identity: nothing to read it back by
    char num[96];
    int n = snprintf (num, sizeof num, "%llu\t", (unsigned long long) ++self->row_seq);
    s_copy_add (self, num, (size_t) n, false);
    s_copy_add (self, row->shard, strlen (row->shard), true);
    s_copy_add (self, "\t", 1, false);
    s_copy_add (self, row->name, strlen (row->name), true);
    n = snprintf (num, sizeof num, "\t%lld\t%lld\t%lld\n", (long long) row->window,
                  (long long) row->current, (long long) row->previous);
    s_copy_add (self, num, (size_t) n, false);
}

//  Move the database on: the next load (requests wait on it), else a
//  snapshot when one is due.
static void
s_pump (self_t *self)
{
    if (!self->db || self->snapshot_busy || self->prune_busy || self->loading)
        return;
    int64_t now = s_now (self);
    if (aigw_pgconn_state (self->db) != AIGW_PGCONN_IDLE) {
        if (aigw_pgconn_state (self->db) == AIGW_PGCONN_DOWN) {
            //  No database now: the waiting shards start empty rather
            //  than hold their requests.
            s_load_t *load;
            while ((load = (s_load_t *) zlistx_detach (self->queue, NULL))) {
                aigw_warn ("ratelimit: database down; a shard's counters start empty");
                s_load_finish (self, load);
            }
        }
        return;
    }
    s_load_t *load = (s_load_t *) zlistx_detach (self->queue, NULL);
    if (load) {
        char since[32];
        snprintf (since, sizeof since, "%lld",
                  (long long) (now / 1000 - (int64_t) S_SPEND_DAYS * 86400));
        const char *params[] = {load->shard, since};
        self->loading = load;
        if (aigw_pgconn_send (self->db, S_LOAD_SQL, 2, params, now + S_STATEMENT_MS, s_load_done,
                              self, now)) {
            self->loading = NULL;
            s_load_finish (self, load);
        }
        return;
    }
    if (now >= self->prune_at) {
        //  Every owner prunes every tenant's past rows: they read as zero
        //  to anyone, so whoever deletes them first is right.
        self->prune_at = now + S_PRUNE_MS;
        if (aigw_pgconn_send (self->db, S_PRUNE_SQL, 0, NULL, now + S_STATEMENT_MS, s_prune_done,
                              self, now)
            == 0) {
            self->prune_busy = true;
            return;
        }
    }
    if (now < self->snapshot_at)
        return;
    self->snapshot_at = now + self->config->rl_snapshot_ms;
    aigw_rlengine_dirty (self->engine, S_SNAPSHOT_ROWS, s_snapshot_row, self);
    if (!self->snapshot_len)
        return;
    if (aigw_pgconn_copy (self->db, S_SNAPSHOT_SQL, self->snapshot, self->snapshot_len,
                          now + S_STATEMENT_MS, s_snapshot_done, self, now)
        == 0)
        self->snapshot_busy = true;
}

//  ---------------------------------------------------------------------
//  Stage

static void
s_load_destructor (void **item)
{
    s_load_free ((s_load_t **) item);
}

static void *
s_rl_new (aigw_host_t *host, const aigw_config_t *config)
{
    self_t *self = (self_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->host = host;
    self->clock = aigw_now_ms;
    self->poll_db = self->poll_models = -1;
    //  A new incarnation's reservations never match an old one's.
    uint64_t seq = ((uint64_t) randof (0x7fffffff) << 32) ^ (uint64_t) aigw_now_us ()
                   ^ ((uint64_t) getpid () << 20);
    self->engine = aigw_rlengine_new (seq);
    self->loads = zhashx_new ();
    zhashx_set_destructor (self->loads, s_load_destructor);
    self->queue = zlistx_new ();
    if (!self->engine || !self->loads || !self->queue) {
        aigw_rlengine_destroy (&self->engine);
        zhashx_destroy (&self->loads);
        zlistx_destroy (&self->queue);
        free (self);
        return NULL;
    }
    if (host && config->database_url && *config->database_url) {
        aigw_pgconn_settings_t settings
            = {.name = "ratelimit",
               .application_name = "aigw-ratelimit",
               .connect_timeout_ms
               = config->db_connect_timeout_ms > 0 ? config->db_connect_timeout_ms : 3000,
               .statement_timeout_ms = S_STATEMENT_MS,
               .backoff_min_ms = 100,
               .backoff_max_ms = 2000};
        self->db = aigw_pgconn_new (config->database_url, &settings, NULL);
        if (self->db) {
            aigw_rlengine_track (self->engine, true);
            aigw_pgconn_connect (self->db, aigw_now_ms ());
            //  Budgets reserve at the highest prices of database models
            //  too, kept fresh as the admin API changes them.
            self->models = aigw_dbwatch_new (
                config->database_url, S_MODELS_CHANNEL, S_PRICES_SQL,
                config->db_statement_timeout_ms > 0 ? config->db_statement_timeout_ms : 5000);
            if (!self->models)
                aigw_error ("ratelimit: cannot watch the database's models; their budgets "
                            "reserve nothing before the settle");
        }
        else
            aigw_error ("ratelimit: the database URL cannot be used; counters in memory only");
    }
    return self;
}

static void
s_rl_destroy (void **state_p)
{
    self_t *self = (self_t *) *state_p;
    if (!self)
        return;
    self->stopping = true;
    aigw_pgconn_destroy (&self->db);
    aigw_dbwatch_destroy (&self->models);
    zhashx_destroy (&self->prices);
    self->loading = NULL;  //  the loads hash owns it
    zlistx_destroy (&self->queue);
    zhashx_destroy (&self->loads);
    aigw_rlengine_destroy (&self->engine);
    free (self->snapshot);
    free (self->sweep);
    free (self);
    *state_p = NULL;
}

static void
s_rl_take (void *state, aigw_job_t *job, aigw_envelope_t *env)
{
    self_t *self = (self_t *) state;
    if (env->kind == AIGW_KIND_SETTLE) {
        s_settle (self, env);
        env->last = true;
        aigw_stage_pass (&job, &env);
        return;
    }
    const char *shard = s_shard (env);
    bool wait = self->db && aigw_pgconn_state (self->db) != AIGW_PGCONN_DOWN
                && !aigw_rlengine_has_shard (self->engine, shard);
    if (!wait) {
        s_run (self, job, env);
        return;
    }
    //  First request of a shard this worker now owns: its counters come
    //  from the database before it is answered.
    s_load_t *load = (s_load_t *) zhashx_lookup (self->loads, shard);
    if (!load) {
        load = (s_load_t *) calloc (1, sizeof *load);
        assert (load);
        load->shard = strdup (shard);
        load->held = aigw_held_new ();
        zhashx_insert (self->loads, shard, load);
        //  The hash owns it; the queue only points at it.
        zlistx_add_end (self->queue, load);
    }
    aigw_held_add (load->held, job, env);
    s_pump (self);
}

//  A held request whose client left: dropped with its job.
static void
s_rl_cancel (void *state, aigw_job_t *job)
{
    self_t *self = (self_t *) state;
    for (s_load_t *load = (s_load_t *) zhashx_first (self->loads); load;
         load = (s_load_t *) zhashx_next (self->loads))
        if (aigw_held_drop (load->held, job))
            return;
}

static void
s_rl_tick (void *state)
{
    self_t *self = (self_t *) state;
    int64_t now = s_now (self);
    aigw_rlengine_tick (self->engine, now, self->db ? now - S_IDLE_MS : 0);
    //  Shards whose owner is now another worker are dropped: if they come
    //  back, their counters are read again rather than trusted stale.
    if (self->host) {
        const char *shard = self->sweep ? aigw_rlengine_next_shard (self->engine, self->sweep)
                                        : aigw_rlengine_next_shard (self->engine, NULL);
        for (int i = 0; shard && i < S_SWEEP_PER_TICK; i++) {
            const char *next = aigw_rlengine_next_shard (self->engine, shard);
            if (!aigw_host_owns (self->host, "ratelimit", shard)) {
                aigw_info ("ratelimit: a shard moved to another worker; its counters dropped");
                aigw_rlengine_drop_shard (self->engine, shard);
            }
            shard = next;
        }
        free (self->sweep);
        self->sweep = shard ? strdup (shard) : NULL;
    }
    s_pump (self);
}

static int
s_rl_pollitems (void *state, zmq_pollitem_t *items, int max)
{
    self_t *self = (self_t *) state;
    int n = 0;
    self->poll_db = self->poll_models = -1;
    if (n < max && aigw_pgconn_pollitem (self->db, &items[n]))
        self->poll_db = n++;
    if (self->models && n < max && aigw_dbwatch_fd (self->models) >= 0) {
        items[n] = (zmq_pollitem_t){NULL, aigw_dbwatch_fd (self->models),
                                    aigw_dbwatch_events (self->models), 0};
        self->poll_models = n++;
    }
    return n;
}

static int
s_rl_timeout (void *state)
{
    self_t *self = (self_t *) state;
    if (!self->db)
        return -1;
    int64_t now = aigw_now_ms ();
    int t = aigw_pgconn_timeout (self->db, now);
    if (aigw_pgconn_state (self->db) == AIGW_PGCONN_IDLE) {
        int64_t due = self->snapshot_at < self->prune_at ? self->snapshot_at : self->prune_at;
        int64_t snap = due - now;
        if (snap < 0)
            snap = 0;
        if (t < 0 || snap < t)
            t = (int) (snap > INT_MAX ? INT_MAX : snap);
    }
    //  (else its answer, or its coming up, moves us on)
    int watch = self->models ? aigw_dbwatch_timeout (self->models, zclock_mono ()) : -1;
    if (watch >= 0 && (t < 0 || watch < t))
        t = watch;
    return t;
}

static void
s_rl_process (void *state, zmq_pollitem_t *items, int count)
{
    self_t *self = (self_t *) state;
    if (!self->db)
        return;
    if (self->models) {
        //  The watcher keeps time on the monotonic clock.
        bool ready = self->poll_models >= 0 && self->poll_models < count
                     && items[self->poll_models].revents;
        if (ready || aigw_dbwatch_timeout (self->models, zclock_mono ()) == 0) {
            PGresult *res = aigw_dbwatch_process (self->models, zclock_mono ());
            if (res) {
                s_prices_load (self, res);
                PQclear (res);
            }
        }
    }
    short revents = self->poll_db >= 0 && self->poll_db < count ? items[self->poll_db].revents : 0;
    aigw_pgconn_process (self->db, revents, aigw_now_ms ());
    s_pump (self);
}

//  One owner per tenant (limits.md 2): every counter of a tenant and of
//  its keys is in one worker, which checks a request's limits in one step.
static const char *
s_rl_shard_key (aigw_envelope_t *env, const aigw_config_t *config)
{
    return s_shard (env);
}

const aigw_stage_def_t aigw_ratelimit_stage = {
    .name = "ratelimit",
    .replay_safe = true,
    .state_new = s_rl_new,
    .state_destroy = s_rl_destroy,
    .take = s_rl_take,
    .cancel = s_rl_cancel,
    .pollitems = s_rl_pollitems,
    .timeout = s_rl_timeout,
    .process = s_rl_process,
    .tick = s_rl_tick,
    .shard_key = s_rl_shard_key,
};

//  ---------------------------------------------------------------------
//  Selftest: decisions, settles and reports (the database and the
//  owners' moves run in the integration suite).

static int64_t s_test_now;
static int64_t
s_test_clock (void)
{
    return s_test_now;
}

//  A chat request of KEY in TENANT (NULL: none) with LM (NULL: none).
static aigw_envelope_t *
s_test_env (const char *key, const char *tenant, const char *lm, const char *body)
{
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->key_id, key);
    aigw_envelope_set (&env->tenant_id, tenant);
    aigw_envelope_set (&env->limits, lm);
    aigw_envelope_set (&env->model, "gpt-test");
    if (body)
        aigw_envelope_set_body (env, body, strlen (body));
    env->deadline_ms = s_test_now + 1000;
    return env;
}

void
aigw_ratelimit_test (bool verbose)
{
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    self_t *self = (self_t *) s_rl_new (NULL, config);
    assert (self && !self->db);
    self->clock = s_test_clock;
    s_test_now = 1700000040000LL;  //  start of a window

    //  Without lm: the key's rpm per key id, as before AIGW-LIMITS.
    aigw_envelope_t *env = s_test_env ("k1", NULL, NULL, NULL);
    env->rpm = 3;
    for (int i = 0; i < 3; i++) {
        env->status = 0;
        s_decide (self, env);
        assert (env->status == 0);
        assert (env->rl_limit == 3 && env->rl_remaining == 2 - i);
        assert (env->rl_reset == (s_test_now + 60000) / 1000);
        assert (streq (env->rl_kind, "rpm") && !env->reservation);
    }
    s_decide (self, env);
    assert (env->status == 429 && env->retry_after == 60 && env->rl_remaining == 0);
    assert (streq (env->err_type, "rate_limit_error") && streq (env->err_code, "rpm"));
    assert (streq (env->err_param, "key"));
    assert (streq (s_rl_shard_key (env, config), "k1"));
    aigw_envelope_destroy (&env);
    //  ... and the default for a key with none.
    env = s_test_env ("k2", NULL, NULL, NULL);
    s_decide (self, env);
    assert (env->status == 0 && env->rl_limit == config->default_rpm);
    aigw_envelope_destroy (&env);

    //  With lm: the tenant is the shard; the master key's share "*".
    env = s_test_env ("k3", "t1", "k=rpm:5;t=rpm:2", NULL);
    assert (streq (s_rl_shard_key (env, config), "t1"));
    s_decide (self, env);
    assert (env->status == 0 && env->rl_limit == 2 && env->rl_remaining == 1);
    aigw_envelope_destroy (&env);
    env = s_test_env ("k4", "t1", "k=rpm:5;t=rpm:2", NULL);
    s_decide (self, env);
    assert (env->status == 0 && env->rl_remaining == 0);
    aigw_envelope_destroy (&env);
    env = s_test_env ("k4", "t1", "k=rpm:5;t=rpm:2", NULL);
    s_decide (self, env);
    assert (env->status == 429 && streq (env->err_code, "rpm"));
    assert (streq (env->err_param, "tenant"));
    aigw_envelope_destroy (&env);
    env = s_test_env ("master", "*", "", NULL);
    assert (streq (s_rl_shard_key (env, config), "*"));
    aigw_envelope_destroy (&env);
    //  A malformed lm is the gateway's fault: 500, nothing reserved.
    env = s_test_env ("k5", "t2", "k=rpm:x", NULL);
    s_decide (self, env);
    assert (env->status == 500 && streq (env->err_code, "limits_invalid"));
    aigw_envelope_destroy (&env);

    //  tpm: the prompt's estimate plus max_tokens reserved, settled back.
    const char *body = "{\"model\":\"gpt-test\",\"max_tokens\":100,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}";
    env = s_test_env ("k6", "t3", "k=tpm:150", body);
    s_decide (self, env);
    assert (env->status == 0 && streq (env->rl_kind, "tpm") && env->reservation);
    int64_t first = env->rl_remaining;
    assert (first < 50 && first > 0);
    aigw_envelope_t *second = s_test_env ("k6", "t3", "k=tpm:150", body);
    s_decide (self, second);
    assert (second->status == 429 && streq (second->err_code, "tpm"));
    aigw_envelope_destroy (&second);
    //  The settle: a one-way envelope with the real use.
    aigw_envelope_t *settle = aigw_envelope_new ();
    settle->kind = AIGW_KIND_SETTLE;
    aigw_envelope_set (&settle->tenant_id, "t3");
    aigw_envelope_set (&settle->key_id, "k6");
    aigw_envelope_set (&settle->reservation, env->reservation);
    settle->tokens_in = 10;
    settle->tokens_out = 5;
    assert (streq (s_rl_shard_key (settle, config), "t3"));
    s_settle (self, settle);
    assert (settle->status == 204);
    s_settle (self, settle);  //  twice: nothing more
    aigw_envelope_destroy (&settle);
    aigw_envelope_destroy (&env);
    env = s_test_env ("k6", "t3", "k=tpm:150", body);
    s_decide (self, env);
    assert (env->status == 0);
    assert (env->rl_remaining == first - 15);
    aigw_envelope_destroy (&env);

    //  Budgets reserve at the model's highest prices (none configured
    //  here: 0 reserved, the settle charges).
    env = s_test_env ("k7", "t4", "k=usd:1000/day", body);
    s_decide (self, env);
    assert (env->status == 0 && streq (env->rl_kind, "budget") && env->reservation);
    settle = aigw_envelope_new ();
    settle->kind = AIGW_KIND_SETTLE;
    aigw_envelope_set (&settle->reservation, env->reservation);
    settle->cost_nusd = 1000;
    s_settle (self, settle);
    aigw_envelope_destroy (&settle);
    aigw_envelope_destroy (&env);
    env = s_test_env ("k7", "t4", "k=usd:1000/day", body);
    s_decide (self, env);
    assert (env->status == 429 && streq (env->err_code, "budget"));
    assert (env->retry_after > 0);
    aigw_envelope_destroy (&env);

    //  Database models: their highest prices, their fallbacks' included,
    //  reserved before the call (one request of two fits a $1 budget).
    self->prices = zhashx_new ();
    zhashx_set_destructor (self->prices, s_price_destroy);
    s_price_add (self->prices, "db-model", 1000, 2000, "[\"db-fallback\", 7]");
    s_price_add (self->prices, "db-fallback", 3000, 5000, NULL);
    double in = 0, out = 0;
    s_prices (self, "db-model", &in, &out, 0);
    assert (in == 3000 && out == 5000);
    in = out = 0;
    s_prices (self, "no-such-model", &in, &out, 0);
    assert (in == 0 && out == 0);
    for (int i = 0; i < 2; i++) {
        env = s_test_env ("k8", "t5", "k=usd:1000000000/day", body);
        aigw_envelope_set (&env->model, "db-model");
        s_decide (self, env);
        //  100 completion tokens at $5000/M: $0.50, the prompt's a little more.
        assert (i == 0 ? env->status == 0 : env->status == 429);
        aigw_envelope_destroy (&env);
    }

    //  The owner's report (GET rate-limits through the admin actor).
    env = s_test_env ("k3", "t1",
                      "k=rpm:5,usd:2000000000/month;t=rpm:2;km=conc:4;"
                      "tm:other=tpm:9",
                      NULL);
    env->kind = AIGW_KIND_ADMIN;
    aigw_envelope_set (&env->path, "rate-limits");
    s_report (self, env);
    assert (env->status == 200 && streq (env->content_type, "application/json"));
    json_t *report = json_loadb (env->body, env->body_len, 0, NULL);
    assert (report);
    if (verbose)
        printf ("%.*s\n", (int) env->body_len, env->body);
    json_t *key = json_object_get (json_object_get (report, "key"), "limits");
    assert (json_array_size (key) == 2);
    json_t *rpm = json_array_get (key, 0);
    assert (streq (json_string_value (json_object_get (rpm, "kind")), "rpm"));
    assert (json_integer_value (json_object_get (rpm, "limit")) == 5);
    assert (json_integer_value (json_object_get (rpm, "used")) == 1);
    assert (json_integer_value (json_object_get (rpm, "remaining")) == 4);
    assert (json_integer_value (json_object_get (rpm, "reset")) == (s_test_now + 60000) / 1000);
    json_t *usd = json_array_get (key, 1);
    assert (streq (json_string_value (json_object_get (usd, "kind")), "budget"));
    assert (json_real_value (json_object_get (usd, "limit")) == 2.0);
    assert (streq (json_string_value (json_object_get (usd, "period")), "month"));
    json_t *tenant = json_object_get (report, "tenant");
    assert (streq (json_string_value (json_object_get (tenant, "id")), "t1"));
    json_t *t_rpm = json_array_get (json_object_get (tenant, "limits"), 0);
    assert (json_integer_value (json_object_get (t_rpm, "used")) == 2);
    json_t *models = json_object_get (report, "models");
    assert (json_array_size (json_object_get (json_object_get (models, "gpt-test"), "key")) == 1);
    assert (json_array_size (json_object_get (json_object_get (models, "other"), "tenant")) == 1);
    json_decref (report);
    aigw_envelope_destroy (&env);

    void *state = self;
    s_rl_destroy (&state);
    s_rl_destroy (&state);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("ratelimit: ok\n");
}
