-- 008: prompts and answers in usage records, for the tenants that opt in
-- (issue 10: "Prompts and answers are not stored unless a tenant opts in").
--
-- tenants.store_content: false by default. Changing it fires the tenants
-- trigger of 001 (NOTIFY aigw_keys '*'), so every auth process drops its
-- cached keys and the next request of the tenant's keys carries the new
-- setting (envelope field sc) within the NOTIFY's round trip.
--
-- usage_records.content: NULL unless the request's tenant had opted in
-- when auth looked at the request. Else
--     {"request": ..., "response": ..., "truncated": bool}
-- request: the JSON body as the client sent it (a string when cut at the
-- cap); response: the answer's JSON body (non-stream), or the text of the
-- Server-Sent Events the client got (stream), a string; each capped at
-- 64 KiB (AIGW_CONTENT_MAX), truncated true when either was cut.
ALTER TABLE tenants ADD COLUMN store_content boolean NOT NULL DEFAULT false;

ALTER TABLE usage_records ADD COLUMN content jsonb;

COMMENT ON COLUMN tenants.store_content IS
    'Keep each request''s prompt and answer in usage_records.content.';
COMMENT ON COLUMN usage_records.content IS
    'The request and answer, only for tenants with store_content; NULL otherwise.';

-- Reading content takes its own permission: usage:read alone shows the
-- figures, never the prompts. admin has '*'.
UPDATE roles SET permissions = permissions || ARRAY['usage:read_content']
 WHERE builtin AND name = 'tenant-admin'
   AND NOT ('usage:read_content' = ANY (permissions));
