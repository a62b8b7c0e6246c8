-- The provider layer: what shepherd keeps about each cluster (kind, sealed credentials, health,
-- capabilities), the VMs it watches there, what the reconciler found and what it offers for
-- adoption.

CREATE TYPE cluster_kind AS ENUM ('kubevirt', 'simulated');
CREATE TYPE cluster_health AS ENUM ('UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'UNREACHABLE');
CREATE TYPE vm_status AS ENUM
    ('RUNNING', 'STOPPED', 'STARTING', 'STOPPING', 'MIGRATING', 'PAUSED', 'FAILED', 'UNKNOWN');

-- A simulated cluster has no endpoint of its own: its api_url is sim://NAME.
ALTER TABLE clusters DROP CONSTRAINT clusters_api_url_check;
ALTER TABLE clusters
    ADD CONSTRAINT clusters_api_url_check
        CHECK (api_url ~ '^(https?|sim)://' AND length(api_url) <= 2048),
    ADD COLUMN kind                 cluster_kind NOT NULL DEFAULT 'kubevirt',
    -- AES-256-GCM: 12-byte nonce || ciphertext || 16-byte tag, under the daemon's key file.
    ADD COLUMN credentials          bytea CHECK (octet_length(credentials) <= 262144),
    ADD COLUMN credentials_key_id   text NOT NULL DEFAULT '' CHECK (length(credentials_key_id) <= 64),
    ADD COLUMN default_namespace    text NOT NULL DEFAULT 'default'
        CHECK (length(default_namespace) <= 63),
    ADD COLUMN health               cluster_health NOT NULL DEFAULT 'UNKNOWN',
    ADD COLUMN health_message       text NOT NULL DEFAULT '' CHECK (length(health_message) <= 1024),
    ADD COLUMN health_checked_at    timestamptz,
    ADD COLUMN kubernetes_version   text NOT NULL DEFAULT '' CHECK (length(kubernetes_version) <= 64),
    ADD COLUMN kubevirt_version     text NOT NULL DEFAULT '' CHECK (length(kubevirt_version) <= 64),
    ADD COLUMN capabilities         jsonb NOT NULL DEFAULT '[]'::jsonb
        CHECK (jsonb_typeof(capabilities) = 'array'),
    ADD COLUMN capabilities_at      timestamptz,
    ADD COLUMN updated_at           timestamptz NOT NULL DEFAULT now();

-- The VMs shepherd manages, as last observed in their cluster (the watcher keeps this current).
CREATE TABLE vms (
    id               bigserial PRIMARY KEY,
    cluster_id       bigint NOT NULL REFERENCES clusters (id) ON DELETE RESTRICT,
    namespace        text NOT NULL CHECK (namespace ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
                                          AND length(namespace) <= 63),
    name             text NOT NULL CHECK (name ~ '^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$'
                                          AND length(name) <= 63),
    uid              text NOT NULL DEFAULT '' CHECK (length(uid) <= 64),
    status           vm_status NOT NULL DEFAULT 'UNKNOWN',
    printable_status text NOT NULL DEFAULT '' CHECK (length(printable_status) <= 32),
    resource_version text NOT NULL DEFAULT '' CHECK (length(resource_version) <= 32),
    cpus             integer NOT NULL DEFAULT 0 CHECK (cpus >= 0),
    memory_bytes     bigint NOT NULL DEFAULT 0 CHECK (memory_bytes >= 0),
    node             text NOT NULL DEFAULT '' CHECK (length(node) <= 253),
    ip               text NOT NULL DEFAULT '' CHECK (length(ip) <= 64),
    error            text NOT NULL DEFAULT '' CHECK (length(error) <= 512),
    -- Set by the reconciler in mark mode: the row has no VM in the cluster. Never deleted by it.
    reconcile_mark   text CHECK (reconcile_mark IN ('ghost')),
    marked_at        timestamptz,
    observed_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cluster_id, namespace, name)
);

-- VMs found in a cluster with the adoption label and no row in vms: an admin adopts or ignores.
CREATE TABLE pending_adoptions (
    id            bigserial PRIMARY KEY,
    cluster_id    bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    namespace     text NOT NULL CHECK (length(namespace) <= 63),
    name          text NOT NULL CHECK (length(name) <= 253),
    uid           text NOT NULL DEFAULT '' CHECK (length(uid) <= 64),
    labels        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
    summary       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(summary) = 'object'),
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'adopted', 'ignored')),
    discovered_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    decided_by    text NOT NULL DEFAULT '' CHECK (length(decided_by) <= 128),
    decided_at    timestamptz,
    vm_id         bigint REFERENCES vms (id) ON DELETE SET NULL,
    UNIQUE (cluster_id, namespace, name)
);
CREATE INDEX pending_adoptions_state_idx ON pending_adoptions (state, id);

-- One reconciler pass over one cluster: what it compared and found, and whether it halted.
CREATE TABLE reconcile_runs (
    id            bigserial PRIMARY KEY,
    cluster_id    bigint NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    mode          text NOT NULL CHECK (mode IN ('dry-run', 'mark')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    outcome       text NOT NULL DEFAULT 'running'
                  CHECK (outcome IN ('running', 'ok', 'halted', 'failed')),
    db_count      integer NOT NULL DEFAULT 0,
    cluster_count integer NOT NULL DEFAULT 0,
    ghosts        jsonb NOT NULL DEFAULT '[]'::jsonb,
    orphans       jsonb NOT NULL DEFAULT '[]'::jsonb,
    message       text NOT NULL DEFAULT '' CHECK (length(message) <= 1024),
    actor         text NOT NULL DEFAULT '' CHECK (length(actor) <= 128)
);
CREATE INDEX reconcile_runs_cluster_idx ON reconcile_runs (cluster_id, id);
