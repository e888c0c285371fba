//! Pure tests of [`super::generate`]: catalogs with statistics built in code, statements
//! analysed by `shape`, no server.

use super::generate;
use crate::advise::thresholds::Thresholds;
use crate::indexes::model::{
    Candidate, CandidateSet, Catalog, Column, ColumnStats, KeyExpr, PatternLimit, Query, Reason,
    SortKey, Source, Table,
};
use crate::indexes::shape::shape;
use crate::snapshot::Index;

fn stats(n_distinct: f64, mcv: &[(&str, f64)]) -> Option<ColumnStats> {
    Some(ColumnStats {
        null_frac: 0.0,
        avg_width: 8,
        n_distinct,
        most_common_vals: mcv.iter().map(|(v, _)| v.to_string()).collect(),
        most_common_freqs: mcv.iter().map(|(_, f)| *f).collect(),
        correlation: None,
        histogram_bounds: Vec::new(),
    })
}

fn column(name: &str, stats: Option<ColumnStats>) -> Column {
    Column {
        name: name.into(),
        type_name: "integer".into(),
        stats,
        ..Column::default()
    }
}

fn table(name: &str, rows: f64, pages: i64, columns: Vec<Column>) -> Table {
    Table {
        schema: "public".into(),
        name: name.into(),
        reltuples: rows,
        relpages: pages,
        columns,
        ..Table::default()
    }
}

fn orders() -> Table {
    let mut note = column("note", stats(-0.5, &[]));
    note.stats.as_mut().unwrap().avg_width = 200;
    table(
        "orders",
        1_000_000.0,
        10_000,
        vec![
            column("id", stats(-1.0, &[])),
            column("customer_id", stats(50_000.0, &[])),
            column(
                "status",
                stats(
                    5.0,
                    &[
                        ("done", 0.9),
                        ("shipped", 0.05),
                        ("pending", 0.02),
                        ("cancelled", 0.02),
                        ("new", 0.01),
                    ],
                ),
            ),
            column("created_at", stats(-0.9, &[])),
            column("total", stats(-0.5, &[])),
            note,
            column("is_paid", stats(2.0, &[("t", 0.97), ("f", 0.03)])),
        ],
    )
}

fn customers() -> Table {
    let mut deleted = column("deleted_at", stats(-0.01, &[]));
    deleted.stats.as_mut().unwrap().null_frac = 0.02;
    table(
        "customers",
        100_000.0,
        2_000,
        vec![
            column("id", stats(-1.0, &[])),
            column("email", stats(-1.0, &[])),
            column("name", stats(-0.8, &[])),
            column("region", stats(10.0, &[])),
            column("active", stats(2.0, &[("f", 0.95), ("t", 0.05)])),
            deleted,
            column("plain", None),
            column("other", None),
        ],
    )
}

fn settings() -> Table {
    table(
        "settings",
        50.0,
        1,
        vec![column("key", stats(-1.0, &[])), column("value", None)],
    )
}

fn index(name: &str, table: &str, keys: &[&str], definition: &str) -> Index {
    Index {
        schema: "public".into(),
        table: table.into(),
        name: name.into(),
        definition: definition.into(),
        access_method: "btree".into(),
        key_columns: keys.iter().map(|k| (*k).into()).collect(),
        is_valid: true,
        is_ready: true,
        is_live: true,
        ..Index::default()
    }
}

/// A text-like column of `type_name` sorting by `collation`.
fn text_column(name: &str, type_name: &str, collation: &str) -> Column {
    Column {
        name: name.into(),
        type_name: type_name.into(),
        collation: Some(collation.into()),
        stats: stats(-0.5, &[]),
        ..Column::default()
    }
}

fn people() -> Table {
    table(
        "people",
        200_000.0,
        4_000,
        vec![
            column("id", stats(-1.0, &[])),
            text_column("name", "text", "en_US.UTF-8"),
            text_column("code", "character varying(20)", "en_US.UTF-8"),
            text_column("tag", "text", "C"),
            text_column("nick", "citext", "en_US.UTF-8"),
            column("team", stats(20.0, &[])),
            column("score", stats(-0.2, &[])),
        ],
    )
}

fn catalog(indexes: Vec<Index>) -> Catalog {
    Catalog {
        tables: vec![orders(), customers(), settings(), people()],
        indexes,
        search_path: vec!["public".into()],
    }
}

fn query(sql: &str) -> Query {
    Query {
        fingerprint: String::new(),
        text: sql.into(),
        calls: 1,
        mean_ms: None,
        source: Source::Argument,
    }
}

fn run_with(catalog: &Catalog, sqls: &[&str]) -> CandidateSet {
    let queries: Vec<Query> = sqls.iter().map(|s| query(s)).collect();
    let shapes: Vec<_> = sqls.iter().map(|s| shape(s, catalog)).collect();
    generate(&queries, &shapes, catalog, &Thresholds::default())
}

fn run(sql: &str) -> CandidateSet {
    run_with(&catalog(Vec::new()), &[sql])
}

/// The candidates of query 0 as DDL tails (`USING btree (...) ...`).
fn ddls(set: &CandidateSet) -> Vec<String> {
    set.per_query[0]
        .iter()
        .map(|id| set.candidates[*id].key_sql())
        .collect()
}

fn has(set: &CandidateSet, key_sql: &str) -> bool {
    ddls(set).iter().any(|d| d == key_sql)
}

fn left_alone(set: &CandidateSet) -> Option<&Reason> {
    set.left_alone.iter().find(|(q, _)| *q == 0).map(|(_, r)| r)
}

#[test]
fn equality_gives_a_single_column_candidate() {
    let set = run("SELECT * FROM orders WHERE customer_id = $1");
    assert_eq!(ddls(&set), vec!["USING \"btree\" (\"customer_id\")"]);
    assert!(left_alone(&set).is_none());
}

#[test]
fn range_gives_a_single_column_candidate() {
    let set = run("SELECT * FROM orders WHERE created_at > $1");
    assert_eq!(ddls(&set), vec!["USING \"btree\" (\"created_at\")"]);
}

#[test]
fn equality_then_range_in_that_order_and_the_equality_alone() {
    let set = run("SELECT * FROM orders WHERE created_at > $2 AND customer_id = $1");
    assert_eq!(
        ddls(&set)[0],
        "USING \"btree\" (\"customer_id\", \"created_at\")"
    );
    assert!(has(&set, "USING \"btree\" (\"customer_id\")"));
    assert!(!has(
        &set,
        "USING \"btree\" (\"created_at\", \"customer_id\")"
    ));
}

#[test]
fn order_by_limit_ascending_and_descending() {
    let set = run("SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at LIMIT 10");
    assert_eq!(
        ddls(&set)[0],
        "USING \"btree\" (\"customer_id\", \"created_at\")"
    );
    let set = run("SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 10");
    assert_eq!(
        ddls(&set)[0],
        "USING \"btree\" (\"customer_id\", \"created_at\" DESC)"
    );
}

#[test]
fn pure_top_n_gets_the_sort_keys() {
    let set = run("SELECT * FROM orders ORDER BY created_at DESC, id DESC LIMIT $1");
    assert_eq!(
        ddls(&set),
        vec!["USING \"btree\" (\"created_at\" DESC, \"id\" DESC)"]
    );
}

#[test]
fn order_by_without_limit_is_nothing_to_index() {
    let set = run("SELECT * FROM orders ORDER BY created_at");
    assert!(set.per_query[0].is_empty());
    assert_eq!(left_alone(&set), Some(&Reason::NothingToIndex));
}

#[test]
fn two_equalities_most_selective_first() {
    let set = run("SELECT * FROM customers WHERE region = $1 AND name = $2");
    assert_eq!(ddls(&set)[0], "USING \"btree\" (\"name\", \"region\")");
}

#[test]
fn two_equalities_without_statistics_keep_statement_order() {
    let set = run("SELECT * FROM customers WHERE plain = $1 AND other = $2");
    assert_eq!(ddls(&set)[0], "USING \"btree\" (\"plain\", \"other\")");
}

#[test]
fn very_selective_column_is_also_proposed_alone() {
    let set = run("SELECT * FROM customers WHERE email = $1 AND region = $2");
    assert!(has(&set, "USING \"btree\" (\"email\", \"region\")"));
    assert!(has(&set, "USING \"btree\" (\"email\")"));
}

#[test]
fn rare_constant_value_makes_a_partial_index_without_its_column_in_the_key() {
    let set = run("SELECT * FROM orders WHERE status = 'pending' ORDER BY created_at LIMIT 20");
    assert!(
        has(
            &set,
            "USING \"btree\" (\"created_at\") WHERE \"status\" = 'pending'"
        ),
        "{:?}",
        ddls(&set)
    );
}

#[test]
fn common_constant_value_makes_no_partial_index_and_is_low_selectivity() {
    let set = run("SELECT * FROM orders WHERE status = 'done'");
    assert!(
        ddls(&set).iter().all(|d| !d.contains("WHERE")),
        "{:?}",
        ddls(&set)
    );
    assert!(set.per_query[0].is_empty());
    assert!(
        matches!(left_alone(&set), Some(Reason::LowSelectivity { column, .. }) if column == "status")
    );
}

#[test]
fn rare_boolean_and_rare_null_make_partial_indexes() {
    let set = run("SELECT * FROM customers WHERE active AND region = $1");
    assert!(
        has(&set, "USING \"btree\" (\"region\") WHERE \"active\""),
        "{:?}",
        ddls(&set)
    );
    let set = run("SELECT * FROM customers WHERE deleted_at IS NULL AND region = $1");
    assert!(
        has(
            &set,
            "USING \"btree\" (\"region\") WHERE \"deleted_at\" IS NULL"
        ),
        "{:?}",
        ddls(&set)
    );
    let set = run("SELECT * FROM orders WHERE is_paid AND customer_id = $1");
    assert!(
        ddls(&set).iter().all(|d| !d.contains("WHERE")),
        "common boolean: {:?}",
        ddls(&set)
    );
}

#[test]
fn covering_index_includes_the_few_narrow_columns_read() {
    let set = run("SELECT total, created_at FROM orders WHERE customer_id = $1");
    assert!(
        has(
            &set,
            "USING \"btree\" (\"customer_id\") INCLUDE (\"total\", \"created_at\")"
        ),
        "{:?}",
        ddls(&set)
    );
    assert!(has(&set, "USING \"btree\" (\"customer_id\")"));
}

#[test]
fn no_covering_index_for_star_or_wide_columns() {
    let set = run("SELECT * FROM orders WHERE customer_id = $1");
    assert!(ddls(&set).iter().all(|d| !d.contains("INCLUDE")));
    let set = run("SELECT note FROM orders WHERE customer_id = $1");
    assert!(
        ddls(&set).iter().all(|d| !d.contains("INCLUDE")),
        "{:?}",
        ddls(&set)
    );
}

#[test]
fn join_keys_are_candidates_of_their_own_tables() {
    let set = run(
        "SELECT o.total FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.email = $1",
    );
    assert!(
        has(&set, "USING \"btree\" (\"customer_id\")"),
        "{:?}",
        ddls(&set)
    );
    assert!(has(&set, "USING \"btree\" (\"id\")"));
    assert!(has(&set, "USING \"btree\" (\"email\")"));
}

#[test]
fn tiny_tables_get_nothing_with_that_reason() {
    let set = run("SELECT * FROM settings WHERE key = $1");
    assert!(set.candidates.is_empty());
    assert!(
        matches!(left_alone(&set), Some(Reason::TinyTable { table, .. }) if table.contains("settings"))
    );
}

#[test]
fn a_tiny_table_beside_a_big_one_leaves_the_big_ones_candidates() {
    let set =
        run("SELECT * FROM settings s JOIN orders o ON o.customer_id = s.key WHERE s.value = $1");
    assert!(has(&set, "USING \"btree\" (\"customer_id\")"));
    assert!(ddls(&set).iter().all(|d| !d.contains("key")));
}

#[test]
fn primary_key_already_indexes_the_column() {
    let mut pk = index("orders_pkey", "orders", &["id"], "");
    pk.is_primary = true;
    pk.is_unique = true;
    let set = run_with(&catalog(vec![pk]), &["SELECT * FROM orders WHERE id = $1"]);
    assert!(set.candidates.is_empty());
    assert_eq!(
        left_alone(&set),
        Some(&Reason::AlreadyIndexed {
            index: "orders_pkey".into()
        })
    );
}

#[test]
fn unique_index_makes_a_longer_equality_candidate_pointless() {
    let mut pk = index("customers_email_key", "customers", &["email"], "");
    pk.is_unique = true;
    let set = run_with(
        &catalog(vec![pk]),
        &["SELECT * FROM customers WHERE email = $1 AND region = $2"],
    );
    assert!(set.per_query[0].is_empty(), "{:?}", ddls(&set));
}

#[test]
fn secondary_index_serves_the_same_column_but_not_a_longer_key() {
    let ix = index("orders_customer_idx", "orders", &["customer_id"], "");
    let set = run_with(
        &catalog(vec![ix]),
        &["SELECT * FROM orders WHERE customer_id = $1 AND created_at > $2"],
    );
    assert!(set.dropped.iter().any(|d| d.reason
        == Reason::AlreadyIndexed {
            index: "orders_customer_idx".into()
        }));
    assert_eq!(
        ddls(&set),
        vec!["USING \"btree\" (\"customer_id\", \"created_at\")"]
    );
}

#[test]
fn prefix_of_a_composite_index_serves_and_backward_scans_count() {
    let ix = index(
        "orders_cc_idx",
        "orders",
        &["customer_id", "created_at"],
        "CREATE INDEX orders_cc_idx ON public.orders USING btree (customer_id, created_at)",
    );
    let cat = catalog(vec![ix]);
    let set = run_with(&cat, &["SELECT * FROM orders WHERE customer_id = $1"]);
    assert!(set.per_query[0].is_empty());
    assert_eq!(
        left_alone(&set),
        Some(&Reason::AlreadyIndexed {
            index: "orders_cc_idx".into()
        })
    );
    let set = run_with(
        &cat,
        &["SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 5"],
    );
    assert!(set.per_query[0].is_empty(), "{:?}", ddls(&set));
}

#[test]
fn mixed_directions_need_an_index_with_the_same_mix() {
    let ix = index(
        "orders_ci_idx",
        "orders",
        &["created_at", "id"],
        "CREATE INDEX orders_ci_idx ON public.orders USING btree (created_at, id)",
    );
    let set = run_with(
        &catalog(vec![ix]),
        &["SELECT * FROM orders ORDER BY created_at DESC, id LIMIT 5"],
    );
    assert_eq!(
        ddls(&set),
        vec!["USING \"btree\" (\"created_at\" DESC, \"id\")"]
    );
}

#[test]
fn existing_partial_index_serves_only_with_the_same_predicate() {
    let same = index(
        "orders_pending_idx",
        "orders",
        &["created_at"],
        "CREATE INDEX orders_pending_idx ON public.orders USING btree (created_at) WHERE (status = 'pending'::text)",
    );
    let mut same = same;
    same.predicate = Some("(status = 'pending')".into());
    let sql = "SELECT * FROM orders WHERE status = 'pending' ORDER BY created_at LIMIT 20";
    let set = run_with(&catalog(vec![same.clone()]), &[sql]);
    assert!(!has(
        &set,
        "USING \"btree\" (\"created_at\") WHERE \"status\" = 'pending'"
    ));
    let mut other = same;
    other.predicate = Some("(status = 'new')".into());
    let set = run_with(&catalog(vec![other]), &[sql]);
    assert!(has(
        &set,
        "USING \"btree\" (\"created_at\") WHERE \"status\" = 'pending'"
    ));
}

#[test]
fn low_selectivity_lone_equality_is_dropped_with_rows_per_value() {
    let set = run("SELECT * FROM orders WHERE status = $1");
    assert!(set.per_query[0].is_empty());
    let Some(Reason::LowSelectivity {
        column,
        rows_per_value,
    }) = left_alone(&set)
    else {
        panic!("{:?}", set.left_alone);
    };
    assert_eq!(column, "status");
    assert_eq!(*rows_per_value, 200_000.0);
}

#[test]
fn low_selectivity_column_before_a_range_is_still_proposed() {
    let set = run("SELECT * FROM orders WHERE status = $1 AND created_at > $2");
    assert_eq!(
        ddls(&set)[0],
        "USING \"btree\" (\"status\", \"created_at\")"
    );
}

#[test]
fn expression_condition_gives_an_expression_index() {
    let set = run("SELECT * FROM customers WHERE lower(email) = $1");
    assert_eq!(ddls(&set), vec!["USING \"btree\" ((lower(email)))"]);
    let c = &set.candidates[0];
    assert!(matches!(&c.keys[0].key, KeyExpr::Expression { columns, .. } if columns == &["email"]));
}

#[test]
fn or_across_two_columns_gives_one_candidate_per_alternative() {
    let set = run("SELECT * FROM customers WHERE email = $1 OR name = $2");
    assert!(has(&set, "USING \"btree\" (\"email\")"));
    assert!(has(&set, "USING \"btree\" (\"name\")"));
}

#[test]
fn unparseable_statement_is_left_alone_with_its_reason() {
    let set = run("SELEC * FROM orders");
    assert!(matches!(
        left_alone(&set),
        Some(Reason::NotParseable { .. })
    ));
}

#[test]
fn candidates_are_shared_across_queries() {
    let set = run_with(
        &catalog(Vec::new()),
        &[
            "SELECT * FROM orders WHERE customer_id = $1",
            "SELECT id FROM orders o WHERE o.customer_id = 42 AND o.id > 0 AND o.total > 9 ORDER BY o.id",
        ],
    );
    let want = Candidate::btree(
        "public",
        "orders",
        vec![SortKey {
            key: KeyExpr::column("customer_id"),
            desc: false,
            nulls_first: None,
        }],
    );
    let id = set.candidates.iter().position(|c| *c == want).unwrap();
    assert!(set.per_query[0].contains(&id));
    assert!(set.per_query[1].contains(&id));
    assert_eq!(set.candidates.iter().filter(|c| **c == want).count(), 1);
}

#[test]
fn update_and_delete_conditions_get_candidates() {
    let set = run("DELETE FROM orders WHERE created_at < $1");
    assert_eq!(ddls(&set), vec!["USING \"btree\" (\"created_at\")"]);
    let set = run("UPDATE customers SET name = $1 WHERE email = $2");
    assert_eq!(ddls(&set), vec!["USING \"btree\" (\"email\")"]);
}

#[test]
fn like_prefix_on_a_c_column_gets_a_plain_btree() {
    let set = run("SELECT * FROM people WHERE tag LIKE 'ab%'");
    assert_eq!(ddls(&set), vec!["USING \"btree\" (\"tag\")"]);
}

#[test]
fn like_prefix_on_a_column_not_sorting_as_c_gets_its_types_pattern_opclass() {
    let set = run("SELECT * FROM people WHERE name LIKE 'Ann%'");
    assert_eq!(
        ddls(&set),
        vec!["USING \"btree\" (\"name\" \"text_pattern_ops\")"]
    );
    let set = run("SELECT * FROM people WHERE code LIKE 'X-1%'");
    assert_eq!(
        ddls(&set),
        vec!["USING \"btree\" (\"code\" \"varchar_pattern_ops\")"]
    );
    // After the equalities, as any range; the equality key keeps the default class.
    let set = run("SELECT * FROM people WHERE team = $1 AND name LIKE 'Ann%'");
    assert_eq!(
        ddls(&set)[0],
        "USING \"btree\" (\"team\", \"name\" \"text_pattern_ops\")"
    );
    let c = &set.candidates[set.per_query[0][0]];
    assert_eq!(c.opclass(0), None);
    assert_eq!(c.opclass(1).map(|o| o.as_str()), Some("text_pattern_ops"));
}

#[test]
fn like_prefix_with_a_sort_on_the_same_column_keeps_both_options() {
    // The pattern class serves the LIKE but not the collation's order: both are costed.
    let set = run("SELECT * FROM people WHERE name LIKE 'Ann%' ORDER BY name LIMIT 10");
    assert!(has(&set, "USING \"btree\" (\"name\")"), "{:?}", ddls(&set));
    assert!(has(&set, "USING \"btree\" (\"name\" \"text_pattern_ops\")"));
}

#[test]
fn like_with_a_parameter_and_ilike_get_nothing_with_the_reason() {
    let reason = |sql: &str| {
        let set = run(sql);
        assert!(set.per_query[0].is_empty(), "{sql}: {:?}", ddls(&set));
        left_alone(&set).cloned()
    };
    let why = |column: &str, why| {
        Some(Reason::UnsearchablePattern {
            column: column.into(),
            why,
        })
    };
    assert_eq!(
        reason("SELECT * FROM people WHERE tag LIKE $1"),
        why("tag", PatternLimit::Parameter)
    );
    assert_eq!(
        reason("SELECT * FROM people WHERE name LIKE $1::text"),
        why("name", PatternLimit::Parameter)
    );
    assert_eq!(
        reason("SELECT * FROM people WHERE tag ILIKE 'ab%'"),
        why("tag", PatternLimit::CaseInsensitive)
    );
    assert_eq!(
        reason("SELECT * FROM people WHERE name LIKE '%nn'"),
        Some(Reason::NothingToIndex)
    );
    assert_eq!(
        reason("SELECT * FROM people WHERE nick LIKE 'ab%'"),
        why("nick", PatternLimit::NoPatternOpclass)
    );
    assert_eq!(
        reason("SELECT * FROM people WHERE name NOT LIKE 'ab%'"),
        Some(Reason::NothingToIndex)
    );
    // Another condition still gets its candidate.
    let set = run("SELECT * FROM people WHERE name ILIKE 'ab%' AND score = $1");
    assert_eq!(ddls(&set), vec!["USING \"btree\" (\"score\")"]);
}

#[test]
fn a_plain_btree_does_not_serve_a_like_prefix_where_the_collation_is_not_c() {
    let plain = index(
        "people_name_idx",
        "people",
        &["name"],
        "CREATE INDEX people_name_idx ON public.people USING btree (name)",
    );
    let pattern = index(
        "people_name_pattern_idx",
        "people",
        &["name"],
        "CREATE INDEX people_name_pattern_idx ON public.people USING btree (name text_pattern_ops)",
    );
    let like = "SELECT * FROM people WHERE name LIKE 'Ann%'";
    let set = run_with(&catalog(vec![plain.clone()]), &[like]);
    assert_eq!(
        ddls(&set),
        vec!["USING \"btree\" (\"name\" \"text_pattern_ops\")"]
    );
    let set = run_with(&catalog(vec![pattern.clone()]), &[like]);
    assert!(set.per_query[0].is_empty(), "{:?}", ddls(&set));
    assert_eq!(
        left_alone(&set),
        Some(&Reason::AlreadyIndexed {
            index: "people_name_pattern_idx".into()
        })
    );
    // The pattern class keeps `=`: it serves an equality; not a sort.
    let set = run_with(
        &catalog(vec![pattern]),
        &["SELECT * FROM people WHERE name = $1"],
    );
    assert!(set.per_query[0].is_empty(), "{:?}", ddls(&set));
    let varchar = index(
        "people_code_idx",
        "people",
        &["code"],
        "CREATE INDEX people_code_idx ON public.people USING btree (code text_pattern_ops)",
    );
    let set = run_with(
        &catalog(vec![varchar]),
        &["SELECT * FROM people WHERE code LIKE 'X%'"],
    );
    assert!(
        set.per_query[0].is_empty(),
        "text_pattern_ops and varchar_pattern_ops are one family: {:?}",
        ddls(&set)
    );
}

#[test]
fn group_by_without_a_condition_gets_its_keys_in_order_and_a_covering_variant() {
    let set = run("SELECT team, score, count(*) FROM people GROUP BY team, score ORDER BY team");
    assert_eq!(ddls(&set), vec!["USING \"btree\" (\"team\", \"score\")"]);
    let set = run("SELECT team, max(score) FROM people GROUP BY team");
    assert_eq!(
        ddls(&set),
        vec![
            "USING \"btree\" (\"team\")",
            "USING \"btree\" (\"team\") INCLUDE (\"score\")"
        ]
    );
}

#[test]
fn group_by_after_a_range_is_an_option_of_its_own() {
    let set = run("SELECT team, count(*) FROM people WHERE score > $1 GROUP BY team");
    assert!(has(&set, "USING \"btree\" (\"score\")"), "{:?}", ddls(&set));
    assert!(has(&set, "USING \"btree\" (\"team\")"), "{:?}", ddls(&set));
    assert!(has(&set, "USING \"btree\" (\"team\") INCLUDE (\"score\")"));
    // After an equality the grouping keys follow it.
    let set = run("SELECT score, count(*) FROM people WHERE team = $1 GROUP BY score");
    assert!(
        has(&set, "USING \"btree\" (\"team\", \"score\")"),
        "{:?}",
        ddls(&set)
    );
}
