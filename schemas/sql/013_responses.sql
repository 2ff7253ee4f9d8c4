-- 013: stored Responses (issue 15, item 1): what POST /v1/responses keeps
-- when the client did not send "store": false, so that a later turn can
-- name it in previous_response_id on any provider, and GET and DELETE
-- /v1/responses/{id} can answer. Owned by the responses stage
-- (actors/responses/aigw_respstore): it reads a row before the provider on
-- a follow-up turn, writes one when the edge hands it the answer the client
-- is about to receive, and prunes rows past expires_at (responses.ttl_s).
--
-- A row is scoped by its tenant: the primary key starts with tenant_id,
-- and every statement names it, so another tenant's id is simply not
-- there (404). tenant_id is the caller's tenant as auth set it (a tenant's
-- uuid, a config tenant's name, '*' for the master key).
--
-- input_items is the whole conversation this response answered: the
-- previous response's input_items and output, then this request's own
-- input, as Responses items. A follow-up turn reads one row; deleting or
-- expiring an earlier response does not break a later one.

CREATE TABLE responses (
    tenant_id             text NOT NULL,
    id                    text NOT NULL,
    key_id                text,
    model                 text NOT NULL,
    deployment            text,          -- the deployment that answered
    provider              text,          -- its provider kind (openai: it keeps the response too)
    previous_response_id  text,
    input_items           jsonb NOT NULL CHECK (jsonb_typeof (input_items) = 'array'),
    response              jsonb NOT NULL CHECK (jsonb_typeof (response) = 'object'),
    created_at            timestamptz NOT NULL DEFAULT now (),
    expires_at            timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- The prune's scan.
CREATE INDEX responses_expires_at ON responses (expires_at);
