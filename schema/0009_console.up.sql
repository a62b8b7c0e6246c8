-- The VNC console: grants (a user's time-limited access to one VM's console, from an approved
-- VNC_ACCESS request), tokens (the single-use marker of every token issued: a replay is refused
-- by whichever replica sees it, since used_at is set here, once) and sessions (one row per
-- proxied connection, with its bytes and how it ended).

-- ---- grants -----------------------------------------------------------------------------------
-- Written in the transaction that approves a VNC_ACCESS ticket (or records one a policy lets
-- through at level 0). A grant is good from granted_at until expires_at, at most 2 hours.
CREATE TABLE console_grants (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    vm_id       bigint NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    ticket_id   bigint REFERENCES approval_tickets (id) ON DELETE SET NULL,
    granted_by  text NOT NULL DEFAULT '',
    reason      text NOT NULL DEFAULT '' CHECK (length(reason) <= 1024),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    CHECK (expires_at > granted_at AND expires_at <= granted_at + interval '2 hours')
);
-- "does this user hold an unexpired grant on this VM": the latest expiry first
CREATE INDEX console_grants_user_vm_idx ON console_grants (user_id, vm_id, expires_at DESC);
CREATE INDEX console_grants_expires_idx ON console_grants (expires_at);
CREATE UNIQUE INDEX console_grants_ticket_idx ON console_grants (ticket_id)
    WHERE ticket_id IS NOT NULL;

-- ---- tokens -----------------------------------------------------------------------------------
-- The token itself is never stored: only its id (jti), its claims' subject, VM and lifetime,
-- and the key that sealed it. used_at is the replay marker: the connection that sets it (one
-- UPDATE ... WHERE used_at IS NULL) is the only one the token ever opens.
CREATE TABLE console_tokens (
    jti         text PRIMARY KEY CHECK (jti ~ '^[0-9a-f]{32}$'),
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    vm_id       bigint NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    grant_id    bigint REFERENCES console_grants (id) ON DELETE SET NULL,
    key_id      text NOT NULL CHECK (key_id ~ '^[0-9a-f]{8}$'),
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_from   text CHECK (length(used_from) <= 256),
    CHECK (expires_at > issued_at AND expires_at <= issued_at + interval '2 hours'),
    CHECK (used_at IS NULL OR used_from IS NOT NULL)
);
CREATE INDEX console_tokens_expires_idx ON console_tokens (expires_at);
CREATE INDEX console_tokens_user_idx ON console_tokens (user_id, issued_at DESC);

-- ---- sessions ---------------------------------------------------------------------------------
CREATE TABLE console_sessions (
    id          bigserial PRIMARY KEY,
    jti         text NOT NULL UNIQUE REFERENCES console_tokens (jti) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    user_name   text NOT NULL,
    vm_id       bigint NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    namespace   text NOT NULL,
    vm_name     text NOT NULL,
    cluster     text NOT NULL,
    source      text NOT NULL CHECK (length(source) <= 256),
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    bytes_in    bigint NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
    bytes_out   bigint NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
    end_reason  text CHECK (end_reason IN ('viewer_closed', 'console_closed', 'idle_timeout',
                                            'session_limit', 'shutdown', 'error')),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL)),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX console_sessions_vm_idx ON console_sessions (vm_id, started_at DESC);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id, started_at DESC);
CREATE INDEX console_sessions_open_idx ON console_sessions (started_at) WHERE ended_at IS NULL;
