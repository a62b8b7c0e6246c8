DROP TABLE rate_limit_overrides;
DROP TRIGGER approval_tickets_batch_update ON approval_tickets;
DROP TRIGGER approval_tickets_batch_insert ON approval_tickets;
DROP FUNCTION approval_tickets_batch_count();
DROP FUNCTION batch_move(bigint, text, text, integer);
DROP FUNCTION batch_aggregate(integer, integer, integer, integer, integer);
DROP FUNCTION batch_bucket(ticket_status);
DROP INDEX approval_tickets_parent_idx;
UPDATE approval_tickets SET approval_level = 1 WHERE approval_level = 0;
ALTER TABLE approval_tickets DROP CONSTRAINT approval_tickets_approval_level_check;
ALTER TABLE approval_tickets ADD CONSTRAINT approval_tickets_approval_level_check
    CHECK (approval_level BETWEEN 1 AND 3);
ALTER TABLE approval_tickets DROP COLUMN retried_by, DROP COLUMN batch_index,
    DROP COLUMN parent_ticket_id;
DROP INDEX batch_open_idx;
DROP INDEX batch_requester_idx;
DROP TABLE batch_approval_tickets;
DROP TYPE batch_status;
