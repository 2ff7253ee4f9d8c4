-- 014: turning the response cache off for a tenant or a key (issue 13,
-- item 5: "per-key or per-tenant opt-out").
--
-- cache: true by default on both. A request is looked up and stored only
-- when its key's and its tenant's are both true: a tenant's false holds
-- for every key in it (a key cannot turn it back on). Auth reads the two
-- with the key (aigw_cp_sql_key_lookup) and marks the request "off"
-- (envelope field cache_control), which the cache stage answers as
-- X-Cache: BYPASS. A change fires the triggers of 001, so every auth
-- process drops the keys concerned within a NOTIFY's round trip.
ALTER TABLE tenants ADD COLUMN cache boolean NOT NULL DEFAULT true;
ALTER TABLE api_keys ADD COLUMN cache boolean NOT NULL DEFAULT true;

COMMENT ON COLUMN tenants.cache IS
    'Answer this tenant''s requests from the response cache and store them there.';
COMMENT ON COLUMN api_keys.cache IS
    'Answer this key''s requests from the response cache (when its tenant''s is on too).';
