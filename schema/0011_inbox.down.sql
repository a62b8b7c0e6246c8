DROP INDEX notifications_created_idx;
DROP INDEX notifications_user_type_idx;
DROP INDEX notifications_coalesce_idx;
ALTER TABLE notifications DROP COLUMN updated_at, DROP COLUMN count, DROP COLUMN coalesce_key;
