-- 009: rate limits, quotas and budgets (schemas/limits.md).
--
-- limits: one JSON object on a tenant and on a key (limits.md 1a), checked
-- by the admin API (actors/auth/aigw_limits) before it lands here; the
-- column only insists on an object. A key's rpm, tpm and budget_usd (the
-- SPEC's field names) stay, and always mirror limits.rpm, limits.tpm and a
-- budget of period month (budget_usd rounded to the column's 4 decimals):
-- the statements in schemas/aigw_cp_sql.c write both from one value.
-- Changes reach auth through the NOTIFY triggers of 001 (a key's row
-- notifies its hash, a tenant's change '*').
ALTER TABLE tenants ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof (limits) = 'object');
ALTER TABLE api_keys ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof (limits) = 'object');

UPDATE api_keys SET limits = jsonb_strip_nulls (jsonb_build_object (
    'rpm', rpm, 'tpm', tpm,
    'budget', CASE WHEN budget_usd IS NOT NULL
                   THEN jsonb_build_object ('usd', budget_usd, 'period', 'month') END))
    WHERE rpm IS NOT NULL OR tpm IS NOT NULL OR budget_usd IS NOT NULL;

COMMENT ON COLUMN tenants.limits IS
    'Limits of the tenant as a whole (schemas/limits.md 1a); {} = none.';
COMMENT ON COLUMN api_keys.limits IS
    'Limits of the key (schemas/limits.md 1a); rpm, tpm and budget_usd mirror it.';

-- ratelimit_state: the rate-limit owners' counters (limits.md 6). An owner
-- holds every counter of the tenants whose shard it owns, writes the
-- changed ones at most every ratelimit.snapshot_ms, and a worker that
-- becomes a shard's owner reads the tenant's rows before it answers that
-- tenant's first request. One row per counter:
--   tenant_id     the shard key as the owner has it: a tenant's id, a
--                 config tenant's name, a key id for a principal without
--                 a tenant, '*' for the master key (text, not a reference:
--                 config tenants have no row in tenants)
--   limit_key     which counter of the tenant, the owner's own naming
--                 (e.g. "k:KEY_ID:rpm", "t:tpm", "tm:MODEL:usd/month")
--   window_start  start of the counter's current window or period
--   current       its count in that window (requests or tokens)
--   previous      its count in the window before (sliding windows)
--   spent_nusd    budgets: nano-USD spent (and reserved) in the period
--   updated_at    when the owner last wrote the row
-- Rows of tenants that have gone quiet may be deleted at any time (a
-- missing row is a zero counter); budgets are rebuilt from usage_rollups.
CREATE TABLE ratelimit_state (
    tenant_id     text NOT NULL CHECK (length (tenant_id) BETWEEN 1 AND 200),
    limit_key     text NOT NULL CHECK (length (limit_key) BETWEEN 1 AND 500),
    window_start  timestamptz NOT NULL,
    current       bigint NOT NULL DEFAULT 0,
    previous      bigint NOT NULL DEFAULT 0,
    spent_nusd    bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now (),
    PRIMARY KEY (tenant_id, limit_key)
);
CREATE INDEX ratelimit_state_updated_idx ON ratelimit_state (updated_at);
