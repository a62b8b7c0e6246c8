-- The execution engine's records: an execution runs one frozen plan for one tenant and actor;
-- its steps, its progress events, the per-asset locks it holds, and the timeout policies by SLA
-- class and action class. The queue of seed 003 is the jobs table (0002); its dead-letter
-- queue is a view over discarded jobs. Approval records come with the governance tables.

CREATE TYPE execution_status AS ENUM
    ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'rejected');
CREATE TYPE execution_mode AS ENUM ('immediate', 'background');
CREATE TYPE approval_state AS ENUM
    ('not_required', 'pending', 'approved', 'rejected', 'expired', 'invalidated');
CREATE TYPE step_status AS ENUM
    ('pending', 'running', 'succeeded', 'failed', 'cancelled', 'skipped');

-- Every SLA class with every action class: a lookup never falls through.
CREATE TABLE timeout_policies (
    id                   text PRIMARY KEY CHECK (id ~ '^[a-z]+_[a-z]+$'),
    sla_class            sla_class NOT NULL,
    action_class         text NOT NULL CHECK (action_class IN ('read', 'modify', 'deploy')),
    execution_timeout_ms integer NOT NULL CHECK (execution_timeout_ms > 0),
    step_timeout_ms      integer NOT NULL CHECK (step_timeout_ms > 0),
    CONSTRAINT step_within_execution CHECK (step_timeout_ms <= execution_timeout_ms),
    UNIQUE (sla_class, action_class)
);
INSERT INTO timeout_policies (id, sla_class, action_class, execution_timeout_ms, step_timeout_ms) VALUES
    ('fast_read',     'fast',   'read',    10000,   5000),
    ('fast_modify',   'fast',   'modify',  10000,  10000),
    ('fast_deploy',   'fast',   'deploy',  10000,  10000),
    ('medium_read',   'medium', 'read',    30000,  10000),
    ('medium_modify', 'medium', 'modify',  30000,  20000),
    ('medium_deploy', 'medium', 'deploy',  30000,  30000),
    ('long_read',     'long',   'read',   600000,  60000),
    ('long_modify',   'long',   'modify', 600000, 300000),
    ('long_deploy',   'long',   'deploy', 600000, 600000);

CREATE TABLE executions (
    id                      bigserial PRIMARY KEY,
    tenant_id               text NOT NULL CHECK (length(tenant_id) BETWEEN 1 AND 128),
    actor_id                bigint REFERENCES users (id) ON DELETE SET NULL,
    actor                   text NOT NULL,
    event_id                bigint REFERENCES domain_events (id),
    idempotency_key         text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    plan_snapshot           jsonb NOT NULL,
    plan_hash               varchar(64) NOT NULL CHECK (plan_hash ~ '^[0-9a-f]{64}$'),
    status                  execution_status NOT NULL DEFAULT 'pending',
    mode                    execution_mode NOT NULL,
    sla_class               sla_class NOT NULL,
    approval_state          approval_state NOT NULL DEFAULT 'not_required',
    approved_plan_hash      varchar(64) CHECK (approved_plan_hash ~ '^[0-9a-f]{64}$'),
    worker_id               varchar(100),
    lease_renewals          integer NOT NULL DEFAULT 0,
    cancel_checks_performed integer NOT NULL DEFAULT 0,
    timeout_ms              integer NOT NULL,
    timeout_policy_id       varchar(50) REFERENCES timeout_policies (id),
    timed_out               boolean NOT NULL DEFAULT false,
    cancelled_by            text,
    cancelled_at            timestamptz,
    cancel_reason           text CHECK (length(cancel_reason) <= 1024),
    result_summary          jsonb,
    error                   text CHECK (length(error) <= 4096),
    created_at              timestamptz NOT NULL DEFAULT now(),
    started_at              timestamptz,
    ended_at                timestamptz,
    last_transition_at      timestamptz NOT NULL DEFAULT now(),
    last_transition_by      text NOT NULL DEFAULT '',
    last_transition_from    execution_status,
    CONSTRAINT valid_cancellation CHECK ((cancelled_by IS NULL) = (cancelled_at IS NULL)),
    CONSTRAINT valid_result_size CHECK
        (result_summary IS NULL OR octet_length(result_summary::text) <= 10240),
    CONSTRAINT valid_timing CHECK
        ((started_at IS NULL OR started_at >= created_at)
         AND (ended_at IS NULL OR (started_at IS NOT NULL AND ended_at >= started_at))),
    CONSTRAINT valid_timeout CHECK (timeout_ms > 0),
    CONSTRAINT valid_timed_out CHECK (NOT timed_out OR timeout_policy_id IS NOT NULL)
);
CREATE UNIQUE INDEX ux_exec_tenant_idem ON executions (tenant_id, idempotency_key);
CREATE INDEX executions_active_idx ON executions (status, id) WHERE status IN ('pending', 'running');
CREATE INDEX executions_event_idx ON executions (event_id);
CREATE INDEX executions_tenant_idx ON executions (tenant_id, id);

CREATE TABLE execution_steps (
    id           bigserial PRIMARY KEY,
    execution_id bigint NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    step_index   integer NOT NULL CHECK (step_index >= 0),
    action       text NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    targets      jsonb NOT NULL DEFAULT '[]',
    params       jsonb NOT NULL DEFAULT '{}',
    status       step_status NOT NULL DEFAULT 'pending',
    timeout_ms   integer NOT NULL CHECK (timeout_ms > 0),
    timed_out    boolean NOT NULL DEFAULT false,
    started_at   timestamptz,
    ended_at     timestamptz,
    result       jsonb CHECK (result IS NULL OR octet_length(result::text) <= 10240),
    error        text CHECK (length(error) <= 4096),
    CONSTRAINT step_timing CHECK (ended_at IS NULL OR (started_at IS NOT NULL AND ended_at >= started_at)),
    UNIQUE (execution_id, step_index)
);

CREATE TABLE execution_events (
    id           bigserial PRIMARY KEY,
    execution_id bigint NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    step_index   integer,
    type         text NOT NULL CHECK (type IN ('status', 'step_started', 'step_finished',
                     'progress', 'log', 'cancel_requested', 'timeout', 'lock_busy',
                     'rbac_violation')),
    message      text NOT NULL DEFAULT '' CHECK (length(message) <= 4096),
    data         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- Progress is read by execution, after the last event id a client has seen.
CREATE INDEX execution_events_exec_idx ON execution_events (execution_id, id);
CREATE INDEX execution_events_rbac_idx ON execution_events (created_at) WHERE type = 'rbac_violation';

-- Per-asset mutex: lock:v1:{tenant}:{target}:{action}, held by one owner until it expires.
CREATE TABLE execution_locks (
    lock_key     text PRIMARY KEY CHECK (lock_key ~ '^lock:v1:[^:]+:.+:[^:]+$' AND length(lock_key) <= 512),
    owner        text NOT NULL CHECK (length(owner) BETWEEN 1 AND 200),
    execution_id bigint REFERENCES executions (id) ON DELETE SET NULL,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CONSTRAINT lock_expiry CHECK (expires_at > acquired_at)
);
CREATE INDEX execution_locks_expiry_idx ON execution_locks (expires_at);

-- The dead-letter queue: jobs that ran out of attempts, with the execution they were running.
CREATE VIEW execution_dlq AS
    SELECT j.id AS job_id, j.kind, j.queue, j.attempt, j.max_attempts, j.errors,
           j.finalized_at AS discarded_at, e.id AS execution_id, e.tenant_id, e.plan_hash,
           e.status AS execution_status
      FROM jobs j
      LEFT JOIN executions e
        ON e.event_id = CASE WHEN j.kind = 'event.dispatch'
                                  AND j.args->>'event_id' ~ '^[0-9]{1,18}$'
                             THEN (j.args->>'event_id')::bigint END
     WHERE j.state = 'discarded';
