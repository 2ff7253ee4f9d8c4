-- 001: the control plane: tenants, roles, API keys, audit log.
-- Applied by `aigw migrate` inside one transaction, under an advisory lock.
-- Secrets are never stored: an API key is kept as the SHA-256 of its secret
-- (keys are 192-bit random, so a fast hash is the right one) plus a short
-- prefix shown to humans.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    name        text NOT NULL CHECK (length (name) BETWEEN 1 AND 200),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now (),
    updated_at  timestamptz NOT NULL DEFAULT now ()
);
CREATE UNIQUE INDEX tenants_name_key ON tenants (name);

-- Roles: built-in ones are global (tenant_id NULL); custom ones may be.
-- A permission is "resource:action" ("keys:write"), or "*" for all.
CREATE TABLE roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    permissions text[] NOT NULL,
    builtin     boolean NOT NULL DEFAULT false,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now ()
);

INSERT INTO roles (name, permissions, builtin, description) VALUES
    ('admin', ARRAY['*'], true, 'everything, in every tenant'),
    ('tenant-admin',
     ARRAY['inference', 'models:read', 'tenants:read', 'keys:read', 'keys:write',
           'usage:read', 'ratelimits:read', 'guardrails:read', 'cache:read', 'audit:read'],
     true, 'everything within its own tenant'),
    ('developer',
     ARRAY['inference', 'models:read', 'tenants:read', 'keys:read', 'usage:read',
           'ratelimits:read'],
     true, 'calls models; reads its tenant'),
    ('viewer',
     ARRAY['models:read', 'tenants:read', 'keys:read', 'usage:read', 'ratelimits:read'],
     true, 'reads its tenant; calls nothing');

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length (name) BETWEEN 1 AND 200),
    prefix          text NOT NULL,              -- first characters, for humans
    secret_sha256   bytea NOT NULL CHECK (length (secret_sha256) = 32),
    role            text NOT NULL REFERENCES roles (name),
    expires_at      timestamptz,                -- NULL: never
    revoked_at      timestamptz,                -- NULL: live
    models          text[],                     -- NULL: every model
    rpm             integer CHECK (rpm > 0),    -- NULL: the default
    tpm             integer CHECK (tpm > 0),
    budget_usd      numeric(14, 4) CHECK (budget_usd >= 0),
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now (),
    updated_at      timestamptz NOT NULL DEFAULT now (),
    rotated_at      timestamptz
);
CREATE UNIQUE INDEX api_keys_secret_key ON api_keys (secret_sha256);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at, id);

-- Who changed what: never a secret (the key columns above hold none).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now (),
    actor_type  text NOT NULL,                  -- master, key, token, cli
    actor_id    text NOT NULL,
    tenant_id   uuid,                           -- tenant acted on, if any
    action      text NOT NULL,                  -- e.g. keys.create
    target_type text NOT NULL,
    target_id   text NOT NULL,
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, at);

-- Every auth instance LISTENs on aigw_keys: a change to a key (or its
-- tenant or role) sends the hex hash of the affected secrets, so caches
-- drop them within a second.
CREATE FUNCTION aigw_notify_key () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify ('aigw_keys', encode (OLD.secret_sha256, 'hex'));
        RETURN OLD;
    END IF;
    PERFORM pg_notify ('aigw_keys', encode (NEW.secret_sha256, 'hex'));
    IF TG_OP = 'UPDATE' AND OLD.secret_sha256 <> NEW.secret_sha256 THEN
        PERFORM pg_notify ('aigw_keys', encode (OLD.secret_sha256, 'hex'));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION aigw_notify_key ();

-- A role or tenant change touches many keys: '*' tells caches to drop all.
CREATE FUNCTION aigw_notify_all () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify ('aigw_keys', '*');
    RETURN NULL;
END $$;
CREATE TRIGGER roles_notify AFTER UPDATE OR DELETE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION aigw_notify_all ();
CREATE TRIGGER tenants_notify AFTER UPDATE OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION aigw_notify_all ();
