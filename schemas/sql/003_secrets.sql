-- 003: provider credentials sealed at rest. The admin API stores a
-- deployment's api_key as aigw_secret's sealed text,
--     aigw:v1:KID:BASE64 (nonce | AES-256-GCM ciphertext | tag)
-- under the key AIGW_SECRET_KEY names, bound to the row's id; provider
-- processes open it. Rows written before this (plain text) keep working
-- until `aigw secrets rotate` seals them.
--
-- Sealing grows a value by a third and a header, so the column's length
-- check widens from 4096 to 8192 characters; the API still takes at most
-- 4096 bytes of secret.
ALTER TABLE model_deployments DROP CONSTRAINT model_deployments_api_key_check,
    ADD CONSTRAINT model_deployments_api_key_check CHECK (length (api_key) BETWEEN 1 AND 8192
        AND api_key !~ '[\u0001-\u001f\u007f]');

COMMENT ON COLUMN model_deployments.api_key IS
    'Sealed upstream secret (aigw:v1:KID:...), or legacy plain text; never answered, never audited.';
