-- Foundation: identities, API tokens, the namespace registry, clusters and the audit log.

CREATE TYPE environment AS ENUM ('test', 'prod');

-- A DNS-1123 label: the shape of Kubernetes namespaces and of shepherd resource names.
CREATE DOMAIN resource_name AS text
    CHECK (VALUE ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(VALUE) <= 63);

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    is_admin    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- How a caller is recognised: a Unix uid on the socket, or a client certificate subject.
CREATE TABLE principals (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('unix', 'cert')),
    subject    text NOT NULL CHECK (length(subject) BETWEEN 1 AND 512),
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, subject)
);
CREATE INDEX principals_user_id_idx ON principals (user_id);

-- Bearer tokens for TLS clients. Only the SHA-256 of a token is stored.
CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 63),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   bigint REFERENCES users (id) ON DELETE SET NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE UNIQUE INDEX api_tokens_active_name_idx ON api_tokens (user_id, name) WHERE revoked_at IS NULL;

-- The namespace registry: a global name with an environment set by an admin; no cluster binding.
CREATE TABLE namespaces (
    id          bigserial PRIMARY KEY,
    name        resource_name NOT NULL UNIQUE,
    environment environment NOT NULL,
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  bigint REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX namespaces_environment_idx ON namespaces (environment, name);

CREATE TABLE clusters (
    id              bigserial PRIMARY KEY,
    name            resource_name NOT NULL UNIQUE,
    api_url         text NOT NULL CHECK (api_url ~ '^https?://' AND length(api_url) <= 2048),
    environment     environment NOT NULL,
    credentials_ref text NOT NULL DEFAULT '' CHECK (length(credentials_ref) <= 512),
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      bigint REFERENCES users (id) ON DELETE SET NULL
);

-- Append-only: every mutation, allowed or refused. UPDATE, DELETE and TRUNCATE are refused below.
CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_id      bigint,
    actor         text NOT NULL,
    action        text NOT NULL CHECK (action ~ '^[A-Z][A-Z0-9_]*$'),
    resource_type text NOT NULL DEFAULT '',
    resource_name text NOT NULL DEFAULT '',
    outcome       text NOT NULL CHECK (outcome IN ('success', 'denied', 'failed')),
    request_id    text NOT NULL DEFAULT '',
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_name, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
