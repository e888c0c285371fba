/* prepared transactions, oldest first: gid, owner, database, seconds since PREPARE, XID age and the locks held by its dummy backend (virtualtransaction '-1/<xid>', no pid) */
SELECT p.gid,
       p.owner::text AS owner,
       p.database::text AS database,
       extract(epoch FROM now() - p.prepared)::float8 AS age_seconds,
       age(p.transaction)::bigint AS xid_age,
       (SELECT count(*)
          FROM pg_catalog.pg_locks l
         WHERE l.pid IS NULL
           AND l.granted
           AND l.virtualtransaction = '-1/' || p.transaction::text)::bigint AS locks
FROM pg_catalog.pg_prepared_xacts p
ORDER BY p.prepared, p.gid
