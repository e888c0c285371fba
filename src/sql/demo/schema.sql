/* the demo's sample database: a small governance schema with realistic data */
CREATE TABLE users (
    id          serial PRIMARY KEY,
    username    text NOT NULL,
    email       text NOT NULL,
    is_active   boolean NOT NULL DEFAULT true,
    role        text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'reviewer', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
CREATE TABLE security_events (
    id          bigserial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (id),
    event_type  text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    occurred_at timestamptz NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'
) WITH (autovacuum_enabled = false);
CREATE TABLE audit_logs (
    id            bigserial PRIMARY KEY,
    actor_id      integer NOT NULL,
    resource_type text NOT NULL,
    resource_id   bigint NOT NULL,
    action        text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    payload       jsonb NOT NULL
) WITH (autovacuum_enabled = false);
CREATE TABLE policy_rules (
    id          serial PRIMARY KEY,
    name        text NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    is_active   boolean NOT NULL DEFAULT true,
    body        text NOT NULL
) WITH (autovacuum_enabled = false);

INSERT INTO users (username, email, is_active, role, last_login_at)
SELECT 'user' || g, 'user' || g || '@example.org', g % 10 <> 0,
       (ARRAY['member', 'member', 'member', 'reviewer', 'admin'])[1 + g % 5],
       now() - (g % 300) * interval '1 day'
FROM generate_series(1, 5000) g;

INSERT INTO security_events (user_id, event_type, severity, occurred_at, details)
SELECT 1 + (g * 7919) % 5000,
       (ARRAY['login', 'logout', 'password_change', 'mfa_failure'])[1 + g % 4],
       CASE WHEN g % 500 = 0 THEN 'critical' WHEN g % 50 = 0 THEN 'high' WHEN g % 5 = 0 THEN 'medium' ELSE 'low' END,
       now() - (g % 365) * interval '1 day' - (g % 86400) * interval '1 second',
       jsonb_build_object('ip', '10.0.' || (g % 256) || '.' || (g % 200))
FROM generate_series(1, 60000) g;

INSERT INTO audit_logs (actor_id, resource_type, resource_id, action, occurred_at, payload)
SELECT (1 + (g::bigint * 104729) % 5000)::int,
       (ARRAY['policy', 'workflow', 'user', 'principle'])[1 + g % 4],
       g % 20000,
       (ARRAY['create', 'read', 'update', 'delete', 'approve'])[1 + g % 5],
       now() - (g % 365) * interval '1 day',
       jsonb_build_object('note', md5(g::text), 'size', g % 1000)
FROM generate_series(1, 300000) g;

INSERT INTO policy_rules (name, version, is_active, body)
SELECT 'rule-' || g, 1 + g % 3, g % 7 <> 0, repeat('clause ', 20)
FROM generate_series(1, 500) g;
