-- Idempotency keys: a client's Idempotency-Key on a mutating request, scoped to its user. The
-- first request with a key runs; a repeat with the same request gets the stored response; a
-- repeat with another request is refused. Keys expire after a day.

CREATE TABLE idempotency_keys (
    id              bigserial PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash    text NOT NULL CHECK (length(request_hash) = 64),
    method          text NOT NULL,
    path            text NOT NULL,
    response_status integer CHECK (response_status BETWEEN 100 AND 599),
    response_body   text CHECK (length(response_body) <= 1048576),
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    expires_at      timestamptz NOT NULL,
    CONSTRAINT idempotency_completed CHECK ((completed_at IS NULL) = (response_status IS NULL)),
    UNIQUE (user_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
