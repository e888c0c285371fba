//! The candidate stage against a real server: on a table with hostile names and planner
//! statistics from ANALYZE, every candidate's DDL is accepted by PostgreSQL 15, and for
//! each statement the planner uses one of its candidates once it is built (each tried in a
//! transaction that is rolled back).

use pgopt::advise::Thresholds;
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::indexes::candidates::generate;
use pgopt::indexes::model::{Catalog, Column, ColumnStats, Query, Source, Table};
use pgopt::indexes::shape::shape;

const PLANT: &str = r#"
CREATE SCHEMA "we""ird";
CREATE TABLE "we""ird"."Tab le" (
    "Id" int NOT NULL,
    "sel ect" text NOT NULL,
    "Status" text NOT NULL,
    "Cre ated" timestamptz NOT NULL,
    flag boolean NOT NULL,
    grp int NOT NULL,
    gone timestamptz
);
INSERT INTO "we""ird"."Tab le"
SELECT g, 'abc' || g,
       CASE WHEN g % 50 = 0 THEN 'pending' WHEN g % 20 = 0 THEN 'new' ELSE 'done' END,
       now() - g * interval '1 minute', g % 33 = 0, g % 1000,
       CASE WHEN g % 40 = 0 THEN NULL ELSE now() END
FROM generate_series(1, 200000) g;
VACUUM ANALYZE "we""ird"."Tab le";
"#;

/// The table's size and pg_stats, as one JSON object.
const STATS: &str = r#"
SELECT json_build_object('reltuples', c.reltuples, 'relpages', c.relpages, 'columns',
  (SELECT json_agg(json_build_object('name', a.attname, 'attnum', a.attnum,
     'type', format_type(a.atttypid, a.atttypmod), 'null_frac', s.null_frac,
     'avg_width', s.avg_width, 'n_distinct', s.n_distinct,
     'mcv', s.most_common_vals::text::text[], 'freqs', s.most_common_freqs) ORDER BY a.attnum)
   FROM pg_attribute a
   LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                       AND s.attname = a.attname
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'we"ird' AND c.relname = 'Tab le';
"#;

fn catalog(c: &Cluster) -> Catalog {
    let raw = c.psql("postgres", STATS).unwrap();
    let v: serde_json::Value = serde_json::from_str(raw.trim()).unwrap();
    let columns = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|col| Column {
            name: col["name"].as_str().unwrap().into(),
            attnum: col["attnum"].as_i64().unwrap() as i16,
            type_name: col["type"].as_str().unwrap().into(),
            not_null: false,
            collation: None,
            stats: Some(ColumnStats {
                null_frac: col["null_frac"].as_f64().unwrap(),
                avg_width: col["avg_width"].as_i64().unwrap() as i32,
                n_distinct: col["n_distinct"].as_f64().unwrap(),
                most_common_vals: strings(&col["mcv"]),
                most_common_freqs: col["freqs"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|f| f.as_f64()).collect())
                    .unwrap_or_default(),
                correlation: None,
                histogram_bounds: Vec::new(),
            }),
        })
        .collect();
    Catalog {
        tables: vec![Table {
            schema: "we\"ird".into(),
            name: "Tab le".into(),
            reltuples: v["reltuples"].as_f64().unwrap(),
            relpages: v["relpages"].as_i64().unwrap(),
            columns,
            ..Table::default()
        }],
        indexes: Vec::new(),
        search_path: vec!["public".into()],
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Statements, each with a fragment the candidate the planner uses must have.
const STATEMENTS: &[(&str, &str)] = &[
    (
        r#"SELECT "Id" FROM "we""ird"."Tab le" WHERE lower("sel ect") = 'abc500'"#,
        "(lower(\"sel ect\"))",
    ),
    (
        r#"SELECT * FROM "we""ird"."Tab le" t WHERE t.grp = 17 AND t."Cre ated" > now() - interval '3 days'"#,
        "\"grp\"",
    ),
    (
        r#"SELECT * FROM "we""ird"."Tab le" WHERE "Status" = 'pending' ORDER BY "Cre ated" DESC LIMIT 10"#,
        "\"Cre ated\" DESC",
    ),
    (
        r#"SELECT * FROM "we""ird"."Tab le" ORDER BY "Cre ated" DESC, "Id" LIMIT 5"#,
        "(\"Cre ated\" DESC, \"Id\")",
    ),
    (
        r#"SELECT * FROM "we""ird"."Tab le" WHERE flag AND grp = 3"#,
        "WHERE \"flag\"",
    ),
    (
        r#"SELECT "Id" FROM "we""ird"."Tab le" WHERE gone IS NULL AND grp < 3"#,
        "IS NULL",
    ),
    (
        r#"SELECT "Id" FROM "we""ird"."Tab le" WHERE "Id" = 77"#,
        "(\"Id\")",
    ),
];

/// Builds the candidate in a transaction, EXPLAINs the statement, rolls back: whether the
/// plan uses it.
fn planner_uses(c: &Cluster, ddl: &str, name: &str, sql: &str) -> bool {
    let script = format!("BEGIN;\n{ddl};\nEXPLAIN (FORMAT JSON) {sql};\nROLLBACK;\n");
    let out = c
        .psql("postgres", &script)
        .unwrap_or_else(|e| panic!("{ddl}: {e:#}"));
    let quoted = serde_json::to_string(name).unwrap();
    out.contains(&format!("\"Index Name\": {quoted}"))
}

#[test]
fn candidate_ddl_is_accepted_and_the_planner_uses_one_of_each_statements_candidates() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", PLANT).unwrap();
    let catalog = catalog(&c);
    let queries: Vec<Query> = STATEMENTS
        .iter()
        .map(|(sql, _)| Query {
            fingerprint: String::new(),
            text: sql.to_string(),
            calls: 1,
            mean_ms: None,
            source: Source::Argument,
        })
        .collect();
    let shapes: Vec<_> = STATEMENTS
        .iter()
        .map(|(sql, _)| shape(sql, &catalog))
        .collect();
    let set = generate(&queries, &shapes, &catalog, &Thresholds::default());
    assert!(set.left_alone.is_empty(), "{:#?}", set.left_alone);
    for (qid, (sql, want)) in STATEMENTS.iter().enumerate() {
        let used: Vec<String> = set.per_query[qid]
            .iter()
            .map(|id| &set.candidates[*id])
            .filter(|cand| {
                let name = cand.index_name();
                planner_uses(&c, &cand.ddl(&name, false), &name, sql)
            })
            .map(|cand| cand.key_sql())
            .collect();
        assert!(
            used.iter().any(|k| k.contains(want)),
            "{sql}: the planner used {used:?}, none with {want}; candidates {:?}",
            set.per_query[qid]
                .iter()
                .map(|id| set.candidates[*id].key_sql())
                .collect::<Vec<_>>()
        );
    }
}
