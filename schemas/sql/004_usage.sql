-- 003: usage records, one row per answered data-plane request, written by
-- the usage actor (actors/usage) in batches. Prompts and answers are never
-- stored here.
--
-- Partitioned by day (UTC) on ts, the time the edge took the request.
-- aigw_usage_partitions makes the partitions ahead of time and drops those
-- past the retention; the usage actor calls it when it connects and every
-- hour. A default partition catches a row whose day has no partition yet
-- (a clock far off, a spool replayed after a long outage), so a batch never
-- fails for it.
--
-- Exactly once: record_id is made by the edge per record, and a batch goes
-- in through a staging table with INSERT ... ON CONFLICT DO NOTHING, so a
-- batch written again (the actor died before its acknowledgement; a spool
-- replayed) adds nothing. The primary key holds ts, as a partitioned
-- table's key must hold its partition column; a record always carries the
-- same ts.
CREATE TABLE usage_records (
    ts                timestamptz NOT NULL,
    record_id         uuid NOT NULL,
    request_id        text NOT NULL,
    tenant_id         text,
    tenant            text,
    key_id            text,
    key_name          text,
    principal_type    text,
    model             text,
    deployment        text,
    provider          text,
    endpoint          text NOT NULL,
    stream            boolean NOT NULL,
    status            integer NOT NULL,
    error_type        text,
    error_code        text,
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    cached_tokens     bigint NOT NULL DEFAULT 0,
    cost_usd          numeric(20, 9) NOT NULL DEFAULT 0,
    latency_ms        integer NOT NULL,
    ttft_ms           integer,
    cache             text,
    attempts          integer NOT NULL DEFAULT 0,
    PRIMARY KEY (record_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE usage_records_default PARTITION OF usage_records DEFAULT;

CREATE INDEX usage_records_tenant_ts ON usage_records (tenant_id, ts);
CREATE INDEX usage_records_key_ts ON usage_records (key_id, ts);

-- Make a partition for each day from today (UTC) to AHEAD days on, and drop
-- the partitions whose day ended more than RETENTION days ago (0: keep
-- all). Returns how many partitions it made. Safe to run from many
-- processes at once: the advisory lock serializes them.
CREATE FUNCTION aigw_usage_partitions (ahead integer, retention integer) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    today date := (now () AT TIME ZONE 'UTC')::date;
    day date;
    name text;
    made integer := 0;
    part record;
BEGIN
    PERFORM pg_advisory_xact_lock (hashtext ('aigw_usage_partitions'));
    FOR i IN 0 .. greatest (ahead, 0) LOOP
        day := today + i;
        name := 'usage_records_' || to_char (day, 'YYYYMMDD');
        IF to_regclass (name) IS NULL THEN
            BEGIN
                EXECUTE format (
                    'CREATE TABLE %I PARTITION OF usage_records FOR VALUES FROM (%L) TO (%L)',
                    name, (day::timestamp AT TIME ZONE 'UTC'),
                    ((day + 1)::timestamp AT TIME ZONE 'UTC'));
                made := made + 1;
            EXCEPTION WHEN OTHERS THEN
                -- Rows for that day already sit in the default partition:
                -- they stay there.
                RAISE NOTICE 'usage partition % not made: %', name, SQLERRM;
            END;
        END IF;
    END LOOP;
    IF retention > 0 THEN
        FOR part IN
            SELECT c.relname FROM pg_inherits i
              JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'usage_records'::regclass
               AND c.relname ~ '^usage_records_[0-9]{8}$'
               AND to_date (substr (c.relname, 15), 'YYYYMMDD') < today - retention
        LOOP
            EXECUTE format ('DROP TABLE %I', part.relname);
        END LOOP;
    END IF;
    RETURN made;
END;
$$;
