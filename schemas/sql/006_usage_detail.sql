-- 006: what a usage record tells beyond tokens and cost (issue 10): the
-- time each stage of the pipeline spent on the request, the guardrail's
-- verdict, the fallbacks taken, and the trace the request belongs to.
--
-- stages: {"auth": 41, "ratelimit": 12, ...}, microseconds per stage, in
-- the order the request went through them (jsonb keeps no order; the
-- pipeline's order is fixed). guardrail: "pass" or
-- "block:GUARDRAIL:RULE"; NULL when no guardrail looked at the request.
-- fallbacks: upstream attempts on a model other than the one asked.
-- trace_id: the W3C trace id (32 hex digits), to find the request's spans.
ALTER TABLE usage_records
    ADD COLUMN stages jsonb,
    ADD COLUMN guardrail text,
    ADD COLUMN fallbacks integer NOT NULL DEFAULT 0,
    ADD COLUMN trace_id text;
