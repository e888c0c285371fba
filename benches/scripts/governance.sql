-- Three reads of the ACGS services against the governance schema that
-- `pgopt governance deploy` + `pgopt governance seed --scale 0.01` make (100 users, 50 policy
-- rules): sign-in by email, a policy rule by name, a user's latest security events.
-- One run of the script is one transaction of three statements, in pgbench and in pgopt.
\set uid random(1, 100)
\set rid random(1, 50)
SELECT id, username, role, last_login_at FROM governance.users WHERE email = 'user' || lpad(:uid::text, 5, '0') || '@acgs.example' AND is_active;
SELECT id, version, enforcement, principle_id FROM governance.policy_rules WHERE name = 'policy-rule-' || lpad(:rid::text, 5, '0') AND is_active;
SELECT id, event_type, severity, occurred_at FROM governance.security_events WHERE user_id = :uid ORDER BY occurred_at DESC LIMIT 20;
