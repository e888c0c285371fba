/* pgopt: one row: the server clock at the start of the collecting transaction */
SELECT now() AS collected_at
