/* pgopt: each role's password kind: missing, md5, scram_sha256 or other (the kind only, never the hash) */
SELECT a.rolname::text AS name,
       CASE WHEN a.rolpassword IS NULL THEN 'missing'
            WHEN a.rolpassword LIKE 'md5%' THEN 'md5'
            WHEN a.rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram_sha256'
            ELSE 'other'
       END AS password_kind
FROM pg_catalog.pg_authid a
