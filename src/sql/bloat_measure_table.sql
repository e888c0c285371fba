/* pgopt: one table measured by pgstattuple_approx (schema-qualified by the caller, the oid as $1): its length and the bytes of free space and of dead tuples in it; reads every page the visibility map does not mark all-visible */
SELECT table_len::bigint AS table_len,
       approx_free_space::bigint AS free_space,
       dead_tuple_len::bigint AS dead_tuple_len
FROM {schema}.pgstattuple_approx($1::oid::regclass)
