-- The notification inbox: coalescing of repeated notifications (a flapping VM tells its owner
-- once per window: the unread row is updated and counted instead of a new one added), the
-- type filter of a user's inbox, and the retention job's scan by age.
ALTER TABLE notifications
    ADD COLUMN coalesce_key text CHECK (length(coalesce_key) <= 128),
    ADD COLUMN count        integer NOT NULL DEFAULT 1 CHECK (count >= 1),
    ADD COLUMN updated_at   timestamptz;
CREATE INDEX notifications_coalesce_idx ON notifications (user_id, type, coalesce_key, id)
    WHERE read_at IS NULL AND coalesce_key IS NOT NULL;
CREATE INDEX notifications_user_type_idx ON notifications (user_id, type, id);
CREATE INDEX notifications_created_idx ON notifications (created_at, id);
