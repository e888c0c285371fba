/* pgopt: one btree index measured by pgstatindex (schema-qualified by the caller, the oid as $1): its size, leaf pages, average leaf density (percent), and empty and deleted pages; reads the whole index */
SELECT index_size::bigint AS index_size,
       leaf_pages::bigint AS leaf_pages,
       avg_leaf_density::float8 AS avg_leaf_density,
       empty_pages::bigint AS empty_pages,
       deleted_pages::bigint AS deleted_pages
FROM {schema}.pgstatindex($1::oid::regclass)
