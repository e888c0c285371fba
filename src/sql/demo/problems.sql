/* the problems the demo plants for analyze to find (each statement alone: see demo.rs) */
-- fresh statistics everywhere but on security_events (analyzed after the data committed)
ANALYZE users;
ANALYZE audit_logs;
ANALYZE policy_rules;
-- duplicate: two identical indexes on users.email
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_email_lookup ON users (email);
-- redundant: a left prefix of a wider index
CREATE INDEX audit_logs_resource_type_idx ON audit_logs (resource_type);
CREATE INDEX audit_logs_resource_type_action_idx ON audit_logs (resource_type, action);
-- unused: an index nobody queries by
CREATE INDEX audit_logs_occurred_at_idx ON audit_logs (occurred_at);
-- a sequence 93 % of the way to its integer column's limit
SELECT setval('policy_rules_id_seq', 2000000000);
-- dead tuples on a table autovacuum may not touch (never vacuumed, never analyzed)
DELETE FROM security_events WHERE id % 3 = 0;
