-- 005: spend roll-ups, kept current from usage_records, which budgets read
-- per tenant, key, model and period; and the permission to read a whole
-- tenant's usage.
--
-- One row per period ('hour', 'day', 'month'), bucket (the period's start,
-- UTC) and (tenant_id, key_id, model, deployment). Day and month rows are
-- kept beside the hour rows, not summed from them when read: a budget
-- check of a busy tenant's month then reads one row per key, model and
-- deployment instead of up to 744 hour rows each, and a batch costs three
-- small grouped upserts instead. NULLs in the records become '' here, so
-- the key is unique (a NULL would never conflict).
--
-- The usage actor writes them in the batch's own transaction, from the
-- rows its INSERT ... ON CONFLICT DO NOTHING really inserted (RETURNING),
-- so a batch written twice adds nothing here either. Its upserts go in
-- primary-key order, so concurrent usage actors that touch the same rows
-- wait for each other instead of deadlocking.
--
-- Kept when records are dropped by usage.retention_days: a row is small
-- and budgets and reports over past months need them. Nothing drops them
-- yet; delete old hour rows by hand if they ever matter.
CREATE TABLE usage_rollups (
    period            text NOT NULL CHECK (period IN ('hour', 'day', 'month')),
    tenant_id         text NOT NULL,              -- '' when the records had none
    bucket            timestamptz NOT NULL,       -- start of the period, UTC
    key_id            text NOT NULL,
    model             text NOT NULL,
    deployment        text NOT NULL,
    requests          bigint NOT NULL DEFAULT 0,
    errors            bigint NOT NULL DEFAULT 0,  -- status >= 400
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens     bigint NOT NULL DEFAULT 0,
    cost_usd          numeric(24, 9) NOT NULL DEFAULT 0,
    PRIMARY KEY (period, tenant_id, bucket, key_id, model, deployment)
);
-- A tenant's period is a prefix of the primary key; a key's is this.
CREATE INDEX usage_rollups_key ON usage_rollups (period, key_id, bucket);

-- Records written before this migration: rolled up once, here. The lock
-- holds writers off until the commit, so no batch falls between this sum
-- and the actors' own upserts.
LOCK TABLE usage_records IN SHARE MODE;
INSERT INTO usage_rollups (period, tenant_id, bucket, key_id, model, deployment, requests,
                           errors, prompt_tokens, completion_tokens, cached_tokens, cost_usd)
SELECT p.period, coalesce (r.tenant_id, ''), date_trunc (p.period, r.ts, 'UTC'),
       coalesce (r.key_id, ''), coalesce (r.model, ''), coalesce (r.deployment, ''),
       count (*), count (*) FILTER (WHERE r.status >= 400), sum (r.prompt_tokens),
       sum (r.completion_tokens), sum (r.cached_tokens), sum (r.cost_usd)
  FROM usage_records r CROSS JOIN (VALUES ('hour'), ('day'), ('month')) AS p (period)
 GROUP BY 1, 2, 3, 4, 5, 6;

-- usage:read shows a principal its own key's usage; usage:read_tenant its
-- whole tenant's (every tenant's for a principal of all tenants).
UPDATE roles SET permissions = permissions || ARRAY['usage:read_tenant']
 WHERE builtin AND name IN ('tenant-admin', 'viewer')
   AND NOT ('usage:read_tenant' = ANY (permissions));
