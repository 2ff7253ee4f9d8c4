-- 015: the response cache's entries in PostgreSQL (actors/cache, issue 13:
-- "persisted to PostgreSQL so a restart or a new owner starts warm").
--
-- Each cache owner writes the entries it keeps, in batches, from its own
-- loop (never on a request's path), and reads a partition's rows, newest
-- first and up to its memory cap, before it answers that partition's
-- first request (after a start, or when the partition moved to it). A row
-- is the answer as the cache keeps it (an OpenAI chat completion for chat
-- answers, else the body), under the exact key; semantic entries carry the
-- prompt's last user text and its sentence vector (float32, little-endian,
-- cache.semantic's dimension). Rows past expires_at are never read, and
-- are deleted by every owner about once a minute; DELETE /api/v1/admin/cache
-- deletes the rows of what it purges. The memory cap's evictions leave
-- rows alone: the TTL bounds them.
--
-- UNLOGGED: a lost table (PostgreSQL crashed) is a cold cache, never a
-- wrong answer, and the writes skip the WAL.
CREATE UNLOGGED TABLE cache_entries (
    exact_key     text PRIMARY KEY,          -- aigw_cacheform's exact key (hex)
    partition_key text NOT NULL,             -- its partition (the shard key, hex)
    tenant        text NOT NULL,             -- as cache/stats names it
    model         text NOT NULL,
    chat          boolean NOT NULL,          -- body is an OpenAI chat completion
    body          text NOT NULL,
    prompt        text,                      -- last user text, semantic entries only
    vector        bytea,                     -- its sentence vector, semantic entries only
    provider      text,                      -- deployment that answered
    provider_kind text,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX cache_entries_partition_idx ON cache_entries (partition_key, created_at DESC);
CREATE INDEX cache_entries_expires_idx ON cache_entries (expires_at);
CREATE INDEX cache_entries_tenant_idx ON cache_entries (tenant, model);
