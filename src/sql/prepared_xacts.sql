/* pgopt: prepared transactions, oldest first: gid, owner, database, seconds since PREPARE, XID age and the locks held by its dummy backend (no pid; the virtual transaction that holds its XID's lock: the preparing backend's on 15, '-1/<xid>' elsewhere) */
WITH dummy AS (
  SELECT l.transactionid, l.virtualtransaction
  FROM pg_catalog.pg_locks l
  WHERE l.locktype = 'transactionid' AND l.pid IS NULL AND l.granted
)
SELECT p.gid,
       p.owner::text AS owner,
       p.database::text AS database,
       extract(epoch FROM now() - p.prepared)::float8 AS age_seconds,
       age(p.transaction)::bigint AS xid_age,
       (SELECT count(*)
          FROM pg_catalog.pg_locks l
         WHERE l.pid IS NULL
           AND l.granted
           AND (l.virtualtransaction IN (SELECT d.virtualtransaction FROM dummy d
                                          WHERE d.transactionid = p.transaction)
                OR l.virtualtransaction = '-1/' || p.transaction::text))::bigint AS locks
FROM pg_catalog.pg_prepared_xacts p
ORDER BY p.prepared, p.gid
