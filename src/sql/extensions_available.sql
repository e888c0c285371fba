/* pgopt: names of the extensions the server could install */
SELECT a.name::text AS name FROM pg_catalog.pg_available_extensions a ORDER BY a.name
