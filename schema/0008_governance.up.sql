-- Governance: systems and services (the tenant scope), platform role bindings with their
-- allowed environments, principal mappings, instance sizes and templates, approval policies,
-- tickets and decisions, VM ownership and revisions, notifications, and the registry of
-- external approval systems (an interface only in this version).

-- ---- systems and services ----------------------------------------------------------------
-- A system is the tenant: tenant_members.tenant_id is a system's name. No environment here:
-- the environment belongs to namespaces and clusters.
CREATE TABLE systems (
    id          bigserial PRIMARY KEY,
    name        resource_name NOT NULL,
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT '',
    deleted_at  timestamptz
);
CREATE UNIQUE INDEX systems_active_name_idx ON systems (name) WHERE deleted_at IS NULL;

-- Service names are unique among active services, so a request names its service alone.
CREATE TABLE services (
    id          bigserial PRIMARY KEY,
    system_id   bigint NOT NULL REFERENCES systems (id) ON DELETE RESTRICT,
    name        resource_name NOT NULL,
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT '',
    deleted_at  timestamptz
);
CREATE UNIQUE INDEX services_active_name_idx ON services (name) WHERE deleted_at IS NULL;
CREATE INDEX services_system_idx ON services (system_id);

-- ---- platform roles ------------------------------------------------------------------------
CREATE TYPE platform_role AS ENUM ('platform-admin', 'approver', 'operator', 'viewer');

CREATE TABLE role_bindings (
    user_id              bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role                 platform_role NOT NULL,
    allowed_environments environment[] NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    created_by           text NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, role)
);

-- Principal mappings (seed 004 §1b): an authenticated principal (a unix user name, an API
-- token's name, a certificate subject) acts as user_name, is a member of team (a system)
-- with team_role, and holds role with allowed_environments, while the mapping is enabled.
CREATE TABLE rbac_mappings (
    id                   bigserial PRIMARY KEY,
    principal_kind       text NOT NULL CHECK (principal_kind IN ('unix', 'token', 'cert')),
    principal            text NOT NULL CHECK (length(principal) BETWEEN 1 AND 512),
    user_name            text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 128),
    team                 resource_name,
    team_role            tenant_role,
    role                 platform_role,
    allowed_environments environment[] NOT NULL DEFAULT '{}',
    enabled              boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    created_by           text NOT NULL DEFAULT '',
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (principal_kind, principal),
    CONSTRAINT rbac_mappings_team CHECK ((team IS NULL) = (team_role IS NULL))
);

-- What a user holds, from bindings and from enabled mappings; users.is_admin is a
-- platform-admin with every environment.
CREATE VIEW effective_role_bindings AS
    SELECT user_id, role, allowed_environments FROM role_bindings
    UNION ALL
    SELECT u.id, m.role, m.allowed_environments
      FROM rbac_mappings m JOIN users u ON u.name = m.user_name
     WHERE m.enabled AND m.role IS NOT NULL
    UNION ALL
    SELECT id, 'platform-admin'::platform_role, '{test,prod}'::environment[]
      FROM users WHERE is_admin;

CREATE VIEW effective_tenant_members AS
    SELECT tenant_id, user_id, role FROM tenant_members
    UNION ALL
    SELECT m.team, u.id, m.team_role
      FROM rbac_mappings m JOIN users u ON u.name = m.user_name
     WHERE m.enabled AND m.team IS NOT NULL;

-- The environments in which uid holds one of roles (nothing for a disabled user).
CREATE FUNCTION user_envs(uid bigint, roles platform_role[]) RETURNS environment[]
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT e ORDER BY e), '{}')
      FROM effective_role_bindings b, unnest(b.allowed_environments) AS e
     WHERE b.user_id = uid AND b.role = ANY (roles)
       AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = uid AND u.disabled_at IS NOT NULL)
$$;

-- uid's role in a system ('' if none): owner, member or viewer.
CREATE FUNCTION user_system_role(uid bigint, sys text) RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT m.role::text FROM effective_tenant_members m
                      WHERE m.user_id = uid AND m.tenant_id = sys
                        AND NOT EXISTS (SELECT 1 FROM users u
                                         WHERE u.id = uid AND u.disabled_at IS NOT NULL)
                      ORDER BY m.role LIMIT 1), '')
$$;

-- May uid see a VM (or ticket) of system sys in environment env?
CREATE FUNCTION vm_visible(uid bigint, sys text, env environment) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT env = ANY (user_envs(uid, '{platform-admin,approver,operator,viewer}'))
           AND (env = ANY (user_envs(uid, '{platform-admin,approver,operator}'))
                OR user_system_role(uid, sys) <> '')
$$;

-- ---- instance sizes and templates ----------------------------------------------------------
CREATE TABLE instance_sizes (
    id                    bigserial PRIMARY KEY,
    name                  resource_name NOT NULL UNIQUE,
    cpus                  integer NOT NULL CHECK (cpus BETWEEN 1 AND 1024),
    memory_mib            bigint NOT NULL CHECK (memory_mib BETWEEN 64 AND 16777216),
    cpu_overcommit        numeric(5, 2) NOT NULL DEFAULT 1 CHECK (cpu_overcommit BETWEEN 1 AND 64),
    memory_overcommit     numeric(5, 2) NOT NULL DEFAULT 1
                              CHECK (memory_overcommit BETWEEN 1 AND 4),
    -- capability names a cluster must report (shd_caps_has_all), e.g. ["gpu"]
    required_capabilities jsonb NOT NULL DEFAULT '[]'
                              CHECK (jsonb_typeof(required_capabilities) = 'array'),
    description           text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
    disabled              boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    created_by            text NOT NULL DEFAULT '',
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE template_status AS ENUM ('draft', 'active', 'deprecated', 'archived');

-- One row per version of a template; at most one active version per name.
CREATE TABLE templates (
    id              bigserial PRIMARY KEY,
    name            resource_name NOT NULL,
    version         integer NOT NULL CHECK (version >= 1),
    status          template_status NOT NULL DEFAULT 'draft',
    description     text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
    os              text NOT NULL DEFAULT '' CHECK (length(os) <= 64),
    -- {"type": "containerDisk", "image": "..."} | {"type": "dataVolume", "url"|"registry": ...,
    --  "size": "20Gi"} | {"type": "pvc", "name": "...", "namespace": "..."}
    image_source    jsonb NOT NULL CHECK (jsonb_typeof(image_source) = 'object'
                                          AND image_source ? 'type'),
    cloud_init      text NOT NULL DEFAULT '' CHECK (length(cloud_init) <= 65536),
    quick_fields    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(quick_fields) = 'array'),
    advanced_fields jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(advanced_fields) = 'array'),
    source          text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'seed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL DEFAULT '',
    published_at    timestamptz,
    deprecated_at   timestamptz,
    archived_at     timestamptz,
    UNIQUE (name, version)
);
CREATE UNIQUE INDEX templates_one_active_idx ON templates (name) WHERE status = 'active';

-- The seed catalogue (deploy/seed/) is imported once; this row says it happened.
CREATE TABLE seed_imports (
    id          bigserial PRIMARY KEY,
    source      text NOT NULL CHECK (length(source) <= 4096),
    templates   integer NOT NULL DEFAULT 0,
    sizes       integer NOT NULL DEFAULT 0,
    imported_at timestamptz NOT NULL DEFAULT now()
);

-- ---- approval policies ---------------------------------------------------------------------
CREATE TYPE request_type AS ENUM
    ('CREATE_SYSTEM', 'DELETE_SYSTEM', 'CREATE_SERVICE', 'DELETE_SERVICE', 'CREATE_VM',
     'MODIFY_VM', 'DELETE_VM', 'START_VM', 'STOP_VM', 'RESTART_VM', 'VNC_ACCESS');

-- Levels: 0 auto-execute, 1 the requester's confirmation, 2 one approver's review (with a
-- runbook), 3 N distinct approvers. environment NULL: the row for requests that have none
-- (systems and services) and the fallback for an environment without its own row.
CREATE TABLE approval_policies (
    request_type       request_type NOT NULL,
    environment        environment,
    level              smallint NOT NULL CHECK (level BETWEEN 0 AND 3),
    approvers_required smallint NOT NULL DEFAULT 1 CHECK (approvers_required BETWEEN 1 AND 10),
    runbook_url        text NOT NULL DEFAULT '' CHECK (length(runbook_url) <= 2048),
    -- a request adding more than this many CPUs / MiB of memory moves up one level (0 = off)
    escalate_cpus      integer NOT NULL DEFAULT 0 CHECK (escalate_cpus >= 0),
    escalate_memory_mib bigint NOT NULL DEFAULT 0 CHECK (escalate_memory_mib >= 0),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    updated_by         text NOT NULL DEFAULT '',
    CONSTRAINT policy_review_runbook CHECK (level <> 2 OR runbook_url <> ''),
    CONSTRAINT policy_quorum CHECK ((level = 3 AND approvers_required >= 2)
                                    OR (level < 3 AND approvers_required = 1))
);
CREATE UNIQUE INDEX approval_policies_key_idx
    ON approval_policies (request_type, environment) NULLS NOT DISTINCT;

-- Seed 001 §4: record-only types need nothing; VM create, modify and delete always need a
-- review; power operations and console access only in prod.
INSERT INTO approval_policies (request_type, environment, level, runbook_url) VALUES
    ('CREATE_SYSTEM',  NULL,   0, ''),
    ('DELETE_SYSTEM',  NULL,   0, ''),
    ('CREATE_SERVICE', NULL,   0, ''),
    ('DELETE_SERVICE', NULL,   0, ''),
    ('CREATE_VM',  'test', 2, 'https://shepherd.invalid/runbooks/vm-create'),
    ('CREATE_VM',  'prod', 2, 'https://shepherd.invalid/runbooks/vm-create'),
    ('MODIFY_VM',  'test', 2, 'https://shepherd.invalid/runbooks/vm-modify'),
    ('MODIFY_VM',  'prod', 2, 'https://shepherd.invalid/runbooks/vm-modify'),
    ('DELETE_VM',  'test', 2, 'https://shepherd.invalid/runbooks/vm-delete'),
    ('DELETE_VM',  'prod', 2, 'https://shepherd.invalid/runbooks/vm-delete'),
    ('START_VM',   'test', 0, ''),
    ('START_VM',   'prod', 2, 'https://shepherd.invalid/runbooks/vm-power'),
    ('STOP_VM',    'test', 0, ''),
    ('STOP_VM',    'prod', 2, 'https://shepherd.invalid/runbooks/vm-power'),
    ('RESTART_VM', 'test', 0, ''),
    ('RESTART_VM', 'prod', 2, 'https://shepherd.invalid/runbooks/vm-power'),
    ('VNC_ACCESS', 'test', 0, ''),
    ('VNC_ACCESS', 'prod', 2, 'https://shepherd.invalid/runbooks/vnc-access');

-- ---- tickets and decisions -----------------------------------------------------------------
CREATE TYPE ticket_status AS ENUM
    ('PENDING_APPROVAL', 'APPROVED', 'EXECUTING', 'COMPLETED', 'FAILED', 'REJECTED',
     'CANCELLED', 'EXPIRED');

-- A ticket is the approval side of one domain event: the event's payload is what was asked
-- (never changed); modified_spec is an approver's full replacement of the spec.
CREATE TABLE approval_tickets (
    id                  bigserial PRIMARY KEY,
    event_id            bigint NOT NULL UNIQUE REFERENCES domain_events (id),
    request_type        request_type NOT NULL,
    status              ticket_status NOT NULL DEFAULT 'PENDING_APPROVAL',
    requester_id        bigint REFERENCES users (id) ON DELETE SET NULL,
    requester           text NOT NULL,
    system              text NOT NULL DEFAULT '' CHECK (length(system) <= 63),
    service             text NOT NULL DEFAULT '' CHECK (length(service) <= 63),
    namespace           text NOT NULL DEFAULT '' CHECK (length(namespace) <= 63),
    environment         environment,
    -- the VM (or system/service) the request is about
    target_name         text NOT NULL DEFAULT '' CHECK (length(target_name) <= 63),
    vm_id               bigint,
    cluster_id          bigint REFERENCES clusters (id) ON DELETE SET NULL,
    approval_level      smallint NOT NULL CHECK (approval_level BETWEEN 1 AND 3),
    approvals_required  smallint NOT NULL DEFAULT 1 CHECK (approvals_required BETWEEN 1 AND 10),
    runbook_url         text NOT NULL DEFAULT '',
    escalated           boolean NOT NULL DEFAULT false,
    modified_spec       jsonb CHECK (modified_spec IS NULL OR jsonb_typeof(modified_spec) = 'object'),
    modification_reason text CHECK (length(modification_reason) <= 1024),
    modified_by         text,
    modified_at         timestamptz,
    -- the hash of the effective plan as it stands (NULL until a cluster is chosen)
    plan_hash           varchar(64) CHECK (plan_hash ~ '^[0-9a-f]{64}$'),
    approved_plan_hash  varchar(64) CHECK (approved_plan_hash ~ '^[0-9a-f]{64}$'),
    execution_id        bigint REFERENCES executions (id) ON DELETE SET NULL,
    reason              text CHECK (length(reason) <= 1024),
    error_code          text CHECK (length(error_code) <= 64),
    error               text CHECK (length(error) <= 4096),
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    decided_at          timestamptz,
    finished_at         timestamptz,
    CONSTRAINT ticket_modification CHECK
        ((modified_spec IS NULL) = (modified_at IS NULL))
);
-- the workbench: pending tickets oldest first
CREATE INDEX approval_tickets_pending_idx ON approval_tickets (created_at, id)
    WHERE status = 'PENDING_APPROVAL';
-- ... filtered by namespace or by requester (the selective filters), still in that order
CREATE INDEX approval_tickets_pending_ns_idx ON approval_tickets (namespace, created_at, id)
    WHERE status = 'PENDING_APPROVAL';
CREATE INDEX approval_tickets_pending_requester_idx
    ON approval_tickets (requester, created_at, id) WHERE status = 'PENDING_APPROVAL';
CREATE INDEX approval_tickets_requester_idx ON approval_tickets (requester_id, id);
CREATE INDEX approval_tickets_vm_idx ON approval_tickets (vm_id, id) WHERE vm_id IS NOT NULL;
CREATE INDEX approval_tickets_expiry_idx ON approval_tickets (expires_at)
    WHERE status = 'PENDING_APPROVAL';
-- one open create per VM name: a second request for a name already asked for is refused
CREATE UNIQUE INDEX approval_tickets_open_create_idx ON approval_tickets (namespace, target_name)
    WHERE request_type = 'CREATE_VM' AND status IN ('PENDING_APPROVAL', 'APPROVED', 'EXECUTING');

CREATE TABLE approval_decisions (
    id             bigserial PRIMARY KEY,
    ticket_id      bigint NOT NULL REFERENCES approval_tickets (id) ON DELETE CASCADE,
    approver_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    approver       text NOT NULL,
    decision       text NOT NULL CHECK (decision IN ('approve', 'reject')),
    plan_hash      varchar(64) CHECK (plan_hash ~ '^[0-9a-f]{64}$'),
    auth_method    text NOT NULL CHECK (length(auth_method) <= 16),
    principal      text NOT NULL CHECK (length(principal) <= 160),
    source         text NOT NULL DEFAULT '' CHECK (length(source) <= 160),
    request_id     text NOT NULL DEFAULT '' CHECK (length(request_id) <= 64),
    reason         text NOT NULL DEFAULT '' CHECK (length(reason) <= 1024),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- set when a change to the effective plan voids this approval
    invalidated_at timestamptz
);
CREATE INDEX approval_decisions_ticket_idx ON approval_decisions (ticket_id, id);
-- an approver counts once towards a quorum
CREATE UNIQUE INDEX approval_decisions_once_idx ON approval_decisions (ticket_id, approver_id)
    WHERE decision = 'approve' AND invalidated_at IS NULL;

-- The request's payload is immutable: modifications live on the ticket.
CREATE FUNCTION domain_events_payload_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.payload IS DISTINCT FROM OLD.payload OR NEW.type IS DISTINCT FROM OLD.type THEN
        RAISE EXCEPTION 'a domain event''s type and payload never change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER domain_events_payload_immutable BEFORE UPDATE ON domain_events
    FOR EACH ROW EXECUTE FUNCTION domain_events_payload_immutable();

-- An auto-executed request records its execution and its event in one transaction, the
-- execution first (with the event's reserved id): the reference is checked at commit.
ALTER TABLE executions ALTER CONSTRAINT executions_event_id_fkey DEFERRABLE INITIALLY DEFERRED;

-- ---- VMs: ownership, soft deletion, revisions ----------------------------------------------
ALTER TABLE vms
    ADD COLUMN system       text NOT NULL DEFAULT '' CHECK (length(system) <= 63),
    ADD COLUMN service      text NOT NULL DEFAULT '' CHECK (length(service) <= 63),
    ADD COLUMN owner_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN template     text NOT NULL DEFAULT '' CHECK (length(template) <= 63),
    ADD COLUMN template_version integer,
    ADD COLUMN size         text NOT NULL DEFAULT '' CHECK (length(size) <= 63),
    ADD COLUMN spec         jsonb CHECK (spec IS NULL OR jsonb_typeof(spec) = 'object'),
    ADD COLUMN revision     integer NOT NULL DEFAULT 0 CHECK (revision >= 0),
    ADD COLUMN deleted_at   timestamptz;
-- a name is taken while its VM is active, and free again once it is deleted
ALTER TABLE vms DROP CONSTRAINT vms_cluster_id_namespace_name_key;
CREATE UNIQUE INDEX vms_active_cluster_idx ON vms (cluster_id, namespace, name)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX vms_active_name_idx ON vms (namespace, name) WHERE deleted_at IS NULL;
CREATE INDEX vms_system_idx ON vms (system, id) WHERE deleted_at IS NULL;

-- spec_z: the spec's YAML, deflate-compressed (zlib); spec_sha256 of the uncompressed YAML
CREATE TABLE vm_revisions (
    id          bigserial PRIMARY KEY,
    vm_id       bigint NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 1),
    spec_z      bytea NOT NULL CHECK (octet_length(spec_z) <= 1048576),
    spec_size   integer NOT NULL CHECK (spec_size BETWEEN 0 AND 4194304),
    spec_sha256 varchar(64) NOT NULL CHECK (spec_sha256 ~ '^[0-9a-f]{64}$'),
    ticket_id   bigint REFERENCES approval_tickets (id) ON DELETE SET NULL,
    event_id    bigint REFERENCES domain_events (id) ON DELETE SET NULL,
    execution_id bigint REFERENCES executions (id) ON DELETE SET NULL,
    plan_hash   varchar(64) CHECK (plan_hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT '',
    UNIQUE (vm_id, version)
);

-- A VM's history (GET /vms/{name}/history): the watcher's status changes of the VM, and the
-- requests that name it (a create's spec, or the VM of a modify, delete or power request).
CREATE INDEX domain_events_vm_status_idx ON domain_events ((payload->>'vm_id'), id)
    WHERE type = 'VM_STATUS_CHANGE';
CREATE INDEX domain_events_vm_request_idx ON domain_events
    ((coalesce(payload->'vm'->>'namespace', payload->'spec'->>'namespace')),
     (coalesce(payload->'vm'->>'name', payload->'spec'->>'name')))
    WHERE type IN ('CREATE_VM', 'MODIFY_VM', 'DELETE_VM', 'START_VM', 'STOP_VM', 'RESTART_VM',
                   'VNC_ACCESS');

-- ---- notifications (the inbox is the first sender) -----------------------------------------
CREATE TABLE notifications (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type ~ '^[A-Z][A-Z0-9_]{0,63}$'),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 256),
    body        text NOT NULL DEFAULT '' CHECK (length(body) <= 4096),
    data        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    ticket_id   bigint REFERENCES approval_tickets (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id);
CREATE INDEX notifications_unread_idx ON notifications (user_id, id) WHERE read_at IS NULL;

-- ---- external approval systems (V1: the registry only; the built-in approval decides) ------
CREATE TABLE external_approval_systems (
    id          bigserial PRIMARY KEY,
    name        resource_name NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_-]{0,31}$'),
    endpoint    text NOT NULL DEFAULT '' CHECK (length(endpoint) <= 2048),
    config      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    enabled     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT ''
);
ALTER TABLE approval_tickets
    ADD COLUMN external_system_id bigint REFERENCES external_approval_systems (id),
    ADD COLUMN external_ref text CHECK (length(external_ref) <= 256);
