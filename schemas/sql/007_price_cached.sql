-- 007: the price of prompt tokens an upstream served from its own prompt
-- cache (OpenAI's cached_tokens, Anthropic's cache_read_input_tokens,
-- Gemini's cachedContentTokenCount, Bedrock's cacheReadInputTokens), in USD
-- per million tokens. NULL: they cost price_in. A request's cost is
--     (prompt - cached) * price_in + cached * price_cached_in
--     + completion * price_out
-- (Anthropic's cache writes are prompt tokens at price_in).
ALTER TABLE model_deployments ADD COLUMN price_cached_in numeric
    CHECK (price_cached_in >= 0 AND price_cached_in <= 1000000000);

COMMENT ON COLUMN model_deployments.price_cached_in IS
    'USD per million prompt tokens read from the upstream''s cache; NULL = price_in.';
