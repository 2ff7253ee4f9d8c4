-- 011: the response cache (actors/cache, issue 13).
--
-- cache:write lets a tenant-admin purge its own tenant's cache (DELETE
-- /api/v1/admin/cache); cache:read (001) shows its figures.
UPDATE roles SET permissions = array_append (permissions, 'cache:write')
    WHERE name = 'tenant-admin' AND NOT ('cache:write' = ANY (permissions));
