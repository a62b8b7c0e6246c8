DROP TABLE console_sessions;
DROP TABLE console_tokens;
DROP TABLE console_grants;
