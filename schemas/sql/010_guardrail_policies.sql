-- 010: guardrail policies in the database (issue 12), managed by the admin
-- API (guardrails/policies) and served by every process that checks text
-- (actors/guardrail/aigw_guardset) beside the config file's policies.
--
-- definition is the policy as aigw_policy_new compiles it:
--   {"description"?, "guardrails": [...], "bindings"?: {"tenants": [ids],
--    "keys": [ids], "models": [names]}}
-- The admin API compiles it before it lands here, so a bad one names its
-- field in a 400; the checks below are the last line.
--
-- A key, a tenant or a model is bound to at most one policy. The bindings
-- are copied into guardrail_policy_bindings by a trigger in the same
-- statement, whose primary key makes that exact under any concurrency: a
-- second policy binding the same thing fails with unique_violation, raised
-- again as a message that names the binding (constraint
-- guardrail_policy_bindings_pkey), which the admin API answers 409.
--
-- Permissions: guardrails:read is held by admin ('*') and tenant-admin
-- (001); guardrails:write by admin, and tenant-admin from here on (within
-- its own tenant: the admin API checks which tenants and keys it binds).

CREATE TABLE guardrail_policies (
    -- URL-safe, so it is its own path segment; 'none' means "no policy" in
    -- guardrail.default_policy.
    name        text PRIMARY KEY CONSTRAINT guardrail_policies_name_check
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' AND name <> 'none'),
    definition  jsonb NOT NULL CONSTRAINT guardrail_policies_definition_check
                CHECK (jsonb_typeof (definition) = 'object'
                       AND jsonb_typeof (definition->'guardrails') = 'array'),
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,  -- owner; NULL: global
    created_at  timestamptz NOT NULL DEFAULT now (),
    updated_at  timestamptz NOT NULL DEFAULT now (),
    created_by  text NOT NULL CHECK (length (created_by) BETWEEN 1 AND 300)  -- actor type:id
);
CREATE INDEX guardrail_policies_tenant_idx ON guardrail_policies (tenant_id);

-- What each policy binds; kept by the trigger below, never written directly.
CREATE TABLE guardrail_policy_bindings (
    kind    text NOT NULL CHECK (kind IN ('keys', 'tenants', 'models')),
    value   text NOT NULL CHECK (length (value) BETWEEN 1 AND 600),
    policy  text NOT NULL REFERENCES guardrail_policies (name) ON DELETE CASCADE,
    CONSTRAINT guardrail_policy_bindings_pkey PRIMARY KEY (kind, value)
);
CREATE INDEX guardrail_policy_bindings_policy_idx ON guardrail_policy_bindings (policy);

CREATE FUNCTION aigw_guardrail_bind () RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    b record;
    other text;
BEGIN
    DELETE FROM guardrail_policy_bindings WHERE policy = NEW.name;
    FOR b IN SELECT k.kind, e.value
             FROM (VALUES ('keys'), ('tenants'), ('models')) AS k (kind),
                  jsonb_array_elements_text (CASE WHEN jsonb_typeof (NEW.definition->'bindings'->k.kind)
                                                  = 'array' THEN NEW.definition->'bindings'->k.kind
                                                  ELSE '[]'::jsonb END) AS e (value)
    LOOP
        BEGIN
            INSERT INTO guardrail_policy_bindings (kind, value, policy)
                VALUES (b.kind, b.value, NEW.name);
        EXCEPTION WHEN unique_violation THEN
            SELECT g.policy INTO other FROM guardrail_policy_bindings g
                WHERE g.kind = b.kind AND g.value = b.value;
            IF other = NEW.name THEN
                CONTINUE;  -- listed twice in this policy
            END IF;
            RAISE unique_violation USING
                CONSTRAINT = 'guardrail_policy_bindings_pkey',
                COLUMN = 'bindings.' || b.kind,
                MESSAGE = format ('%s %s is already bound to the guardrail policy %s.',
                                  left (b.kind, -1), b.value, other);
        END;
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER guardrail_policies_bind AFTER INSERT OR UPDATE OF definition ON guardrail_policies
    FOR EACH ROW EXECUTE FUNCTION aigw_guardrail_bind ();

-- Every process serving policies LISTENs on aigw_guardrails and reloads
-- them all (aigw_guardset) when a change arrives; the payload is the name.
CREATE FUNCTION aigw_notify_guardrail () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify ('aigw_guardrails', OLD.name);
        RETURN OLD;
    END IF;
    PERFORM pg_notify ('aigw_guardrails', NEW.name);
    RETURN NEW;
END $$;
CREATE TRIGGER guardrail_policies_notify AFTER INSERT OR UPDATE OR DELETE ON guardrail_policies
    FOR EACH ROW EXECUTE FUNCTION aigw_notify_guardrail ();

UPDATE roles SET permissions = array_append (permissions, 'guardrails:write')
    WHERE name = 'tenant-admin' AND NOT ('guardrails:write' = ANY (permissions));
