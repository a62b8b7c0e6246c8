-- The durable job queue: jobs claimed with FOR UPDATE SKIP LOCKED under a lease, paused
-- queues, the maintenance leader, and the table the test action set records its effects in.

CREATE TYPE job_state AS ENUM
    ('available', 'scheduled', 'running', 'retryable', 'completed', 'cancelled', 'discarded');
CREATE TYPE sla_class AS ENUM ('fast', 'medium', 'long');

CREATE TABLE jobs (
    id                  bigserial PRIMARY KEY,
    state               job_state NOT NULL DEFAULT 'available',
    queue               text NOT NULL DEFAULT 'default' CHECK (length(queue) BETWEEN 1 AND 128),
    kind                text NOT NULL CHECK (length(kind) BETWEEN 1 AND 128),
    args                jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(args) = 'object'),
    priority            smallint NOT NULL DEFAULT 50 CHECK (priority BETWEEN 0 AND 100),
    attempt             smallint NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts        smallint NOT NULL CHECK (max_attempts BETWEEN 1 AND 1000),
    sla_class           sla_class NOT NULL DEFAULT 'medium',
    attempted_at        timestamptz,
    attempted_by        text[],
    created_at          timestamptz NOT NULL DEFAULT now(),
    scheduled_at        timestamptz NOT NULL DEFAULT now(),
    finalized_at        timestamptz,
    errors              jsonb[],
    unique_key          text CHECK (length(unique_key) BETWEEN 1 AND 255),
    lease_expires_at    timestamptz,
    lease_renewals      int NOT NULL DEFAULT 0,
    rescues             int NOT NULL DEFAULT 0,
    cancel_requested_at timestamptz,
    tags                text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 16),
    metadata            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    -- finalized_at is set exactly in the final states
    CONSTRAINT jobs_finalized_check CHECK
        ((state IN ('completed', 'cancelled', 'discarded')) = (finalized_at IS NOT NULL)),
    -- a running job always has a lease
    CONSTRAINT jobs_running_lease_check CHECK
        (state <> 'running' OR (lease_expires_at IS NOT NULL AND attempted_at IS NOT NULL))
);

-- The fetch: available jobs by priority, then age.
CREATE INDEX jobs_fetch_idx ON jobs (priority, scheduled_at, id) WHERE state = 'available';
-- The scheduler: scheduled and retryable jobs that come due.
CREATE INDEX jobs_scheduler_idx ON jobs (scheduled_at) WHERE state IN ('scheduled', 'retryable');
-- The rescuer: running jobs whose lease expired.
CREATE INDEX jobs_rescuer_idx ON jobs (lease_expires_at) WHERE state = 'running';
-- The cleaner: finished jobs past their retention.
CREATE INDEX jobs_cleaner_idx ON jobs (state, finalized_at) WHERE finalized_at IS NOT NULL;
-- At most one live job per unique key; cancelled and discarded ones release it.
CREATE UNIQUE INDEX jobs_unique_key_idx ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state NOT IN ('cancelled', 'discarded');

CREATE TABLE queues (
    name      text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
    paused_at timestamptz
);

-- The maintenance leader: one row per election, held until expires_at unless renewed.
CREATE TABLE leader (
    name       text PRIMARY KEY,
    leader_id  text NOT NULL,
    elected_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Effects of the test.effect job kind: one row per key however often a job ran.
CREATE TABLE test_effects (
    key        text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    job_id     bigint NOT NULL,
    first_at   timestamptz NOT NULL DEFAULT now(),
    runs       int NOT NULL DEFAULT 1,
    overlapped int NOT NULL DEFAULT 0
);
