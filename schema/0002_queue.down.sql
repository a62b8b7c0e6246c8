DROP TABLE test_effects;
DROP TABLE leader;
DROP TABLE queues;
DROP TABLE jobs;
DROP TYPE sla_class;
DROP TYPE job_state;
