-- Domain events: the immutable record of what was asked (type, payload, actor, tenant) and how
-- far it got. The payload never changes — modifications live on the approval ticket — and no
-- event is ever deleted; finished events are archived (archived_at) after 30 days and leave
-- the default view.

CREATE TYPE event_status AS ENUM ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED');

CREATE TABLE domain_events (
    id           bigserial PRIMARY KEY,
    type         text NOT NULL CHECK (type ~ '^[A-Z][A-Z0-9_]{0,63}$'),
    payload      jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    actor_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    actor        text NOT NULL,
    tenant       text NOT NULL DEFAULT '' CHECK (length(tenant) <= 128),
    status       event_status NOT NULL,
    error        text CHECK (length(error) <= 4096),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finalized_at timestamptz,
    archived_at  timestamptz,
    CONSTRAINT domain_events_finalized CHECK
        ((status IN ('COMPLETED', 'FAILED', 'CANCELLED')) = (finalized_at IS NOT NULL)),
    CONSTRAINT domain_events_archived CHECK (archived_at IS NULL OR finalized_at IS NOT NULL)
);
CREATE INDEX domain_events_status_idx ON domain_events (status, id) WHERE archived_at IS NULL;
CREATE INDEX domain_events_archive_idx ON domain_events (finalized_at)
    WHERE archived_at IS NULL AND finalized_at IS NOT NULL;
CREATE INDEX domain_events_tenant_idx ON domain_events (tenant, id);

-- The request itself is immutable: only status, error and the timestamps that follow them move.
CREATE FUNCTION domain_events_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'domain events are never deleted (archive them)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.id <> OLD.id OR NEW.type <> OLD.type OR NEW.payload IS DISTINCT FROM OLD.payload
       OR NEW.actor_id IS DISTINCT FROM OLD.actor_id AND NEW.actor_id IS NOT NULL
       OR NEW.actor <> OLD.actor OR NEW.tenant <> OLD.tenant OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'the request of domain event % is immutable', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER domain_events_immutable BEFORE UPDATE OR DELETE ON domain_events
    FOR EACH ROW EXECUTE FUNCTION domain_events_guard();
CREATE FUNCTION domain_events_no_truncate() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'domain events are never deleted (archive them)'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER domain_events_no_truncate BEFORE TRUNCATE ON domain_events
    FOR EACH STATEMENT EXECUTE FUNCTION domain_events_no_truncate();

-- What the default queries read: the events not archived.
CREATE VIEW domain_events_current AS
    SELECT * FROM domain_events WHERE archived_at IS NULL;
