DROP VIEW domain_events_current;
DROP TABLE domain_events;
DROP FUNCTION domain_events_guard();
DROP FUNCTION domain_events_no_truncate();
DROP TYPE event_status;
