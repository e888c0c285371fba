/* pgopt: one row: n, the number of rows of pgbench_branches (pgbench's scale, as pgbench -i made it) */
SELECT count(*)::bigint AS n FROM pgbench_branches
