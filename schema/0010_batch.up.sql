-- Batch operations: a parent ticket over many child requests, and per-user rate-limit
-- overrides. See docs/internals/batch.md.

CREATE TYPE batch_status AS ENUM
    ('PENDING_APPROVAL', 'IN_PROGRESS', 'COMPLETED', 'PARTIAL_SUCCESS', 'FAILED', 'CANCELLED');

CREATE TABLE batch_approval_tickets (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('CREATE_VM', 'START_VM', 'STOP_VM', 'RESTART_VM')),
    -- the endpoint the batch came through: vms, approvals (compatibility) or power
    source          text NOT NULL DEFAULT 'vms' CHECK (source IN ('vms', 'approvals', 'power')),
    status          batch_status NOT NULL DEFAULT 'IN_PROGRESS',
    requester_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    requester       text NOT NULL,
    request_id      text NOT NULL DEFAULT '' CHECK (length(request_id) <= 64),
    -- counters of the current children (a retried child leaves failed for retried)
    total           integer NOT NULL DEFAULT 0 CHECK (total >= 0),
    success         integer NOT NULL DEFAULT 0 CHECK (success >= 0),
    failed          integer NOT NULL DEFAULT 0 CHECK (failed >= 0),
    pending         integer NOT NULL DEFAULT 0 CHECK (pending >= 0),
    awaiting        integer NOT NULL DEFAULT 0 CHECK (awaiting >= 0), -- pending approval
    cancelled       integer NOT NULL DEFAULT 0 CHECK (cancelled >= 0),
    retried         integer NOT NULL DEFAULT 0 CHECK (retried >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX batch_requester_idx ON batch_approval_tickets (requester_id, id DESC);
CREATE INDEX batch_open_idx ON batch_approval_tickets (requester_id)
    WHERE status IN ('PENDING_APPROVAL', 'IN_PROGRESS');

-- Children are ordinary tickets; an automatic child (the policy let it run) has level 0 or 1.
ALTER TABLE approval_tickets
    ADD COLUMN parent_ticket_id bigint REFERENCES batch_approval_tickets (id),
    ADD COLUMN batch_index integer CHECK (batch_index >= 0),
    -- a failed child a retry replaced (it no longer counts in the parent)
    ADD COLUMN retried_by bigint REFERENCES approval_tickets (id);
ALTER TABLE approval_tickets DROP CONSTRAINT approval_tickets_approval_level_check;
ALTER TABLE approval_tickets ADD CONSTRAINT approval_tickets_approval_level_check
    CHECK (approval_level BETWEEN 0 AND 3);
CREATE INDEX approval_tickets_parent_idx ON approval_tickets (parent_ticket_id, id)
    WHERE parent_ticket_id IS NOT NULL;

-- Where a child's status counts in its parent.
CREATE FUNCTION batch_bucket(s ticket_status) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE s WHEN 'COMPLETED' THEN 'success'
                  WHEN 'FAILED' THEN 'failed' WHEN 'REJECTED' THEN 'failed'
                  WHEN 'EXPIRED' THEN 'failed' WHEN 'CANCELLED' THEN 'cancelled'
                  WHEN 'PENDING_APPROVAL' THEN 'awaiting' ELSE 'pending' END
$$;

-- The aggregate status of a parent from its counters.
CREATE FUNCTION batch_aggregate(pending integer, awaiting integer, success integer,
                                failed integer, cancelled integer) RETURNS batch_status
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN pending > 0 THEN 'IN_PROGRESS'
        WHEN awaiting > 0 THEN 'PENDING_APPROVAL'
        WHEN failed = 0 AND cancelled = 0 THEN 'COMPLETED'
        WHEN success = 0 AND failed = 0 THEN 'CANCELLED'
        WHEN success = 0 THEN 'FAILED'
        ELSE 'PARTIAL_SUCCESS' END::batch_status
$$;

-- Move one child between buckets (delta +1 into new_b, -1 out of old_b; NULL = none) and
-- aggregate, in the transaction that moved the child. Increments, not recounts: two children
-- ending at once serialise on the parent's row and both count.
CREATE FUNCTION batch_move(parent bigint, old_b text, new_b text, d_total integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE batch_approval_tickets b SET
        total = b.total + d_total,
        success = b.success + (new_b IS NOT DISTINCT FROM 'success')::int - (old_b IS NOT DISTINCT FROM 'success')::int,
        failed = b.failed + (new_b IS NOT DISTINCT FROM 'failed')::int - (old_b IS NOT DISTINCT FROM 'failed')::int,
        pending = b.pending + (new_b IS NOT DISTINCT FROM 'pending')::int - (old_b IS NOT DISTINCT FROM 'pending')::int,
        awaiting = b.awaiting + (new_b IS NOT DISTINCT FROM 'awaiting')::int - (old_b IS NOT DISTINCT FROM 'awaiting')::int,
        cancelled = b.cancelled + (new_b IS NOT DISTINCT FROM 'cancelled')::int - (old_b IS NOT DISTINCT FROM 'cancelled')::int,
        updated_at = now()
    WHERE b.id = parent;
    UPDATE batch_approval_tickets b SET
        status = batch_aggregate(b.pending, b.awaiting, b.success, b.failed, b.cancelled),
        finished_at = CASE WHEN b.pending + b.awaiting = 0 THEN coalesce(b.finished_at, now())
                      ELSE NULL END
    WHERE b.id = parent;
END $$;

CREATE FUNCTION approval_tickets_batch_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM batch_move(NEW.parent_ticket_id, NULL, batch_bucket(NEW.status), 1);
    ELSIF NEW.retried_by IS NOT NULL AND OLD.retried_by IS NULL THEN
        -- replaced by a retry: out of the counters, into retried
        PERFORM batch_move(NEW.parent_ticket_id, batch_bucket(OLD.status), NULL, -1);
        UPDATE batch_approval_tickets SET retried = retried + 1 WHERE id = NEW.parent_ticket_id;
    ELSIF NEW.status <> OLD.status AND NEW.retried_by IS NULL
          AND batch_bucket(NEW.status) <> batch_bucket(OLD.status) THEN
        PERFORM batch_move(NEW.parent_ticket_id, batch_bucket(OLD.status),
                           batch_bucket(NEW.status), 0);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER approval_tickets_batch_insert AFTER INSERT ON approval_tickets
    FOR EACH ROW WHEN (NEW.parent_ticket_id IS NOT NULL)
    EXECUTE FUNCTION approval_tickets_batch_count();
CREATE TRIGGER approval_tickets_batch_update AFTER UPDATE ON approval_tickets
    FOR EACH ROW WHEN (NEW.parent_ticket_id IS NOT NULL)
    EXECUTE FUNCTION approval_tickets_batch_count();

-- Per-user overrides of the rate limits (NULL = the configured value).
CREATE TABLE rate_limit_overrides (
    user_id             bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    exempt              boolean NOT NULL DEFAULT false,
    pending_parents     integer CHECK (pending_parents BETWEEN 0 AND 100000),
    pending_children    integer CHECK (pending_children BETWEEN 0 AND 10000000),
    cooldown_s          integer CHECK (cooldown_s BETWEEN 0 AND 86400),
    reason              text NOT NULL DEFAULT '' CHECK (length(reason) <= 1024),
    set_by              text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
