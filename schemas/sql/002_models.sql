-- 002: models and their deployments, managed by the admin API (models,
-- models/{id}) and served by every provider process beside the config
-- file's models. The checks mirror aigw_models_from_json (actors/
-- aigw_models.c), which refuses bad input first with the offending field;
-- these are the last line.
--
-- An upstream secret written through the API (api_key) is kept here, since
-- provider processes need it in plain text to call the upstream; it is
-- write-only over the API (never answered, only "api_key_set"), and never
-- copied into audit_log.
--
-- Permissions: models:read is already held by every built-in role (001);
-- models:write and router:read are held by admin alone, through '*'. No
-- role changes.

-- Valid model name: 1 to 128 characters, no control character (C0, DEL,
-- C1). Used by the checks of both tables' name columns.
CREATE FUNCTION aigw_model_name_valid (name text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN length (name) BETWEEN 1 AND 128 AND name !~ '[\u0001-\u001f\u007f-\u009f]';

-- True when every element of LIST is a valid model name and none repeats.
CREATE FUNCTION aigw_model_names_valid (list text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (SELECT coalesce (bool_and (aigw_model_name_valid (e)), true)
                   AND count (DISTINCT e) = count (e)
            FROM unnest (list) AS e);

CREATE TABLE models (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    name        text NOT NULL CONSTRAINT models_name_check CHECK (aigw_model_name_valid (name)),
    strategy    text CONSTRAINT models_strategy_check    -- NULL: router.strategy
                CHECK (strategy IN ('weighted', 'least_latency', 'least_in_flight', 'lowest_cost')),
    fallbacks   text[] NOT NULL DEFAULT '{}',          -- model names tried next, in order
    created_at  timestamptz NOT NULL DEFAULT now (),
    updated_at  timestamptz NOT NULL DEFAULT now (),
    CONSTRAINT models_fallbacks_check CHECK (cardinality (fallbacks) <= 8
        AND array_position (fallbacks, NULL) IS NULL AND aigw_model_names_valid (fallbacks)),
    CONSTRAINT models_fallbacks_self_check CHECK (NOT (name = ANY (fallbacks)))
);
CREATE UNIQUE INDEX models_name_key ON models (name);
CREATE INDEX models_created_idx ON models (created_at, id);

-- One upstream that serves a model. position is the order given (0 first);
-- its uniqueness is checked at commit, so one statement may reorder and
-- replace a model's deployments.
CREATE TABLE model_deployments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid (),
    model_id        uuid NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    position        integer NOT NULL CHECK (position BETWEEN 0 AND 15),
    provider        text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]{0,63}$'),
    upstream_model  text NOT NULL CHECK (length (upstream_model) BETWEEN 1 AND 256
                                         AND upstream_model !~ '[\u0001-\u001f\u007f-\u009f]'),
    base_url        text CHECK (length (base_url) <= 2048 AND base_url ~ '^https?://\S+$'),
    api_key_env     text CHECK (api_key_env ~ '^[A-Z_][A-Z0-9_]{0,127}$'),
    -- A secret: never answered, never audited.
    api_key         text CHECK (length (api_key) BETWEEN 1 AND 4096
                                AND api_key !~ '[\u0001-\u001f\u007f]'),
    api_version     text CHECK (api_version ~ '^[!-~]{1,64}$'),
    region          text CHECK (region ~ '^[!-~]{1,64}$'),
    weight          integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 0 AND 1000000),
    priority        integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000),
    rpm             bigint CHECK (rpm >= 0),            -- NULL or 0: unlimited
    tpm             bigint CHECK (tpm >= 0),
    price_in        numeric NOT NULL DEFAULT 0          -- USD per million input tokens
                    CHECK (price_in >= 0 AND price_in <= 1000000000),
    price_out       numeric NOT NULL DEFAULT 0
                    CHECK (price_out >= 0 AND price_out <= 1000000000),
    CONSTRAINT model_deployments_position_key UNIQUE (model_id, position)
        DEFERRABLE INITIALLY DEFERRED
);

-- Every provider process LISTENs on aigw_models and reloads the models
-- (AIGW_MODELS_SQL) when a change arrives. The payload is the id of the
-- model that changed; a reload takes them all, so any payload will do.
CREATE FUNCTION aigw_notify_model () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify ('aigw_models', OLD.id::text);
        RETURN OLD;
    END IF;
    PERFORM pg_notify ('aigw_models', NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER models_notify AFTER INSERT OR UPDATE OR DELETE ON models
    FOR EACH ROW EXECUTE FUNCTION aigw_notify_model ();

CREATE FUNCTION aigw_notify_model_deployment () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify ('aigw_models', OLD.model_id::text);
        RETURN OLD;
    END IF;
    PERFORM pg_notify ('aigw_models', NEW.model_id::text);
    IF TG_OP = 'UPDATE' AND OLD.model_id <> NEW.model_id THEN
        PERFORM pg_notify ('aigw_models', OLD.model_id::text);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER model_deployments_notify AFTER INSERT OR UPDATE OR DELETE ON model_deployments
    FOR EACH ROW EXECUTE FUNCTION aigw_notify_model_deployment ();
