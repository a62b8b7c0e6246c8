CREATE OR REPLACE VIEW execution_dlq AS
    SELECT j.id AS job_id, j.kind, j.queue, j.attempt, j.max_attempts, j.errors,
           j.finalized_at AS discarded_at, e.id AS execution_id, e.tenant_id, e.plan_hash,
           e.status AS execution_status
      FROM jobs j
      LEFT JOIN executions e
        ON e.event_id = CASE WHEN j.kind = 'event.dispatch'
                                  AND j.args->>'event_id' ~ '^[0-9]{1,18}$'
                             THEN (j.args->>'event_id')::bigint END
     WHERE j.state = 'discarded';
ALTER TABLE execution_steps DROP COLUMN attempts;
ALTER TABLE executions
    DROP COLUMN priority, DROP COLUMN approval_level, DROP COLUMN record_only,
    DROP COLUMN estimated_ms, DROP COLUMN mode_reason, DROP COLUMN on_busy,
    DROP COLUMN request_id, DROP COLUMN job_id, DROP COLUMN attempts, DROP COLUMN error_code,
    DROP COLUMN deadline_at;
DROP TABLE execution_flags;
DROP TABLE tenant_members;
DROP TYPE tenant_role;
