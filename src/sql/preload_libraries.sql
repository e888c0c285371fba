/* pgopt: shared_preload_libraries as written, when this role may read it (no row otherwise) */
SELECT s.setting FROM pg_catalog.pg_settings s WHERE s.name = 'shared_preload_libraries'
