-- The execution engine at run time: who may act for a tenant (until systems and their members
-- arrive with the governance tables, a tenant is a name with members), the feature flag of the
-- execution path, and what the engine records about each execution beyond 0005.

CREATE TYPE tenant_role AS ENUM ('owner', 'member', 'viewer');

CREATE TABLE tenant_members (
    tenant_id  resource_name NOT NULL,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       tenant_role NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX tenant_members_user_idx ON tenant_members (user_id);

-- The execution path's switch: global, per approval level, per tenant. Off means record-only.
CREATE TABLE execution_flags (
    scope      text PRIMARY KEY CHECK (scope = 'global' OR scope ~ '^level:[0-3]$'
                   OR (scope ~ '^tenant:[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(scope) <= 70)),
    enabled    boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL CHECK (length(updated_by) <= 128)
);

ALTER TABLE executions
    ADD COLUMN priority       integer NOT NULL DEFAULT 50 CHECK (priority BETWEEN 0 AND 100),
    ADD COLUMN approval_level smallint NOT NULL DEFAULT 0 CHECK (approval_level BETWEEN 0 AND 3),
    ADD COLUMN record_only    boolean NOT NULL DEFAULT false,
    ADD COLUMN estimated_ms   bigint NOT NULL DEFAULT 0 CHECK (estimated_ms >= 0),
    ADD COLUMN mode_reason    text NOT NULL DEFAULT '' CHECK (length(mode_reason) <= 256),
    ADD COLUMN on_busy        text NOT NULL DEFAULT 'fail' CHECK (on_busy IN ('fail', 'wait')),
    ADD COLUMN request_id     text NOT NULL DEFAULT '' CHECK (length(request_id) <= 64),
    ADD COLUMN job_id         bigint,
    ADD COLUMN attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN error_code     text CHECK (length(error_code) <= 64),
    ADD COLUMN deadline_at    timestamptz;

ALTER TABLE execution_steps ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);

-- The dead-letter view also knows the jobs of the execution runner ({"execution_id": N}).
CREATE OR REPLACE VIEW execution_dlq AS
    SELECT j.id AS job_id, j.kind, j.queue, j.attempt, j.max_attempts, j.errors,
           j.finalized_at AS discarded_at, e.id AS execution_id, e.tenant_id, e.plan_hash,
           e.status AS execution_status
      FROM jobs j
      LEFT JOIN executions e
        ON e.id = CASE WHEN j.kind LIKE 'exec.%' AND j.args->>'execution_id' ~ '^[0-9]{1,18}$'
                       THEN (j.args->>'execution_id')::bigint END
        OR e.event_id = CASE WHEN j.kind = 'event.dispatch'
                                  AND j.args->>'event_id' ~ '^[0-9]{1,18}$'
                             THEN (j.args->>'event_id')::bigint END
     WHERE j.state = 'discarded';
