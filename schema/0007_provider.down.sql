DROP TABLE reconcile_runs;
DROP TABLE pending_adoptions;
DROP TABLE vms;
ALTER TABLE clusters DROP CONSTRAINT clusters_api_url_check;
DELETE FROM clusters WHERE kind = 'simulated';
ALTER TABLE clusters
    ADD CONSTRAINT clusters_api_url_check
        CHECK (api_url ~ '^https?://' AND length(api_url) <= 2048),
    DROP COLUMN kind, DROP COLUMN credentials, DROP COLUMN credentials_key_id,
    DROP COLUMN default_namespace, DROP COLUMN health, DROP COLUMN health_message,
    DROP COLUMN health_checked_at, DROP COLUMN kubernetes_version, DROP COLUMN kubevirt_version,
    DROP COLUMN capabilities, DROP COLUMN capabilities_at, DROP COLUMN updated_at;
DROP TYPE vm_status;
DROP TYPE cluster_health;
DROP TYPE cluster_kind;
