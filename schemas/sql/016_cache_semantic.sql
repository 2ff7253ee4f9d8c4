-- 016: semantic lookups turned on or off for a tenant or a key (issue 13:
-- "per key or tenant through the admin API").
--
-- cache_semantic: NULL (the default on both) follows the config
-- (cache.semantic.enabled); false answers the key's requests from exact
-- matches only; true overrides a tenant's false for that key. The key's
-- setting, when not NULL, wins over its tenant's. true cannot turn
-- semantic lookups on where the config has them off: the gateway then has
-- no embedder to make the vectors. A key or tenant whose cache (014) is
-- off has no lookups at all, whatever this says. Auth reads the two with
-- the key (aigw_cp_sql_key_lookup) and marks the request "exact" (envelope
-- field cache_control); a change fires the triggers of 001, as 014's does.
ALTER TABLE tenants ADD COLUMN cache_semantic boolean;
ALTER TABLE api_keys ADD COLUMN cache_semantic boolean;

COMMENT ON COLUMN tenants.cache_semantic IS
    'Semantic cache lookups for this tenant: NULL = the config''s, false = exact matches only.';
COMMENT ON COLUMN api_keys.cache_semantic IS
    'Semantic cache lookups for this key: NULL = its tenant''s, then the config''s; false = exact only.';
