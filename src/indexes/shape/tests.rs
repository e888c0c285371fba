//! Pure tests of [`super::shape`]: catalogs built in code, no server.

use super::{shape, PARAMETER_LIMIT};
use crate::indexes::model::{
    Catalog, Column, KeyExpr, Predicate, PredicateOp, Reason, Shape, SortKey, Table, TableAccess,
};

fn table(schema: &str, name: &str, cols: &[&str]) -> Table {
    Table {
        schema: schema.into(),
        name: name.into(),
        reltuples: 100_000.0,
        relpages: 1000,
        columns: cols
            .iter()
            .enumerate()
            .map(|(i, c)| Column {
                name: (*c).into(),
                attnum: i as i16 + 1,
                type_name: "integer".into(),
                ..Column::default()
            })
            .collect(),
        ..Table::default()
    }
}

fn catalog() -> Catalog {
    Catalog {
        tables: vec![
            table(
                "public",
                "orders",
                &[
                    "id",
                    "customer_id",
                    "status",
                    "total",
                    "created_at",
                    "is_paid",
                    "note",
                ],
            ),
            table(
                "public",
                "customers",
                &["id", "email", "name", "region", "active", "deleted_at"],
            ),
            table("public", "items", &["id", "order_id", "sku", "qty"]),
            table("we\"ird", "Tab le", &["Id", "sel ect", "x"]),
        ],
        indexes: Vec::new(),
        search_path: vec!["public".into()],
    }
}

fn ok(sql: &str) -> Shape {
    shape(sql, &catalog()).unwrap_or_else(|r| panic!("{sql}: {r:?}"))
}

fn access<'a>(s: &'a Shape, table: &str) -> &'a TableAccess {
    s.accesses
        .iter()
        .find(|a| a.table == table)
        .unwrap_or_else(|| panic!("no access to {table} in {s:#?}"))
}

fn col(name: &str) -> KeyExpr {
    KeyExpr::column(name)
}

fn p(name: &str, op: PredicateOp, constant: Option<&str>) -> Predicate {
    Predicate {
        key: col(name),
        op,
        constant: constant.map(str::to_string),
    }
}

#[test]
fn equality_with_a_constant_keeps_the_constant_text_and_a_parameter_none() {
    let s =
        ok("SELECT id FROM orders WHERE status = 'pending' AND customer_id = $1 AND total = 42");
    let o = access(&s, "orders");
    assert_eq!(
        o.predicates,
        vec![
            p("status", PredicateOp::Eq, Some("'pending'")),
            p("customer_id", PredicateOp::Eq, None),
            p("total", PredicateOp::Eq, Some("42")),
        ]
    );
    assert!(s.read_only);
    assert_eq!(o.reads, vec!["status", "customer_id", "total", "id"]);
}

#[test]
fn alias_resolves_qualified_columns_to_the_table() {
    let s = ok("SELECT o.total FROM orders AS o WHERE o.customer_id = 7");
    let o = access(&s, "orders");
    assert_eq!(o.alias.as_deref(), Some("o"));
    assert_eq!(
        o.predicates,
        vec![p("customer_id", PredicateOp::Eq, Some("7"))]
    );
}

#[test]
fn in_list_and_any_parameter_are_in_predicates() {
    let s = ok(
        "SELECT 1 FROM orders WHERE status IN ('a', 'b', 'c') AND customer_id = ANY($1) \
                AND id IN (5)",
    );
    let o = access(&s, "orders");
    assert_eq!(o.predicates[0].op, PredicateOp::In { values: Some(3) });
    assert_eq!(o.predicates[1].op, PredicateOp::In { values: None });
    assert_eq!(o.predicates[2], p("id", PredicateOp::Eq, Some("5")));
}

#[test]
fn ranges_and_between_with_the_constant_on_either_side() {
    let s = ok(
        "SELECT 1 FROM orders WHERE created_at >= now() - interval '1 day' AND 100 > total \
                AND id BETWEEN 1 AND 10",
    );
    let o = access(&s, "orders");
    let lower = PredicateOp::Range {
        lower: true,
        upper: false,
    };
    let upper = PredicateOp::Range {
        lower: false,
        upper: true,
    };
    assert_eq!(o.predicates[0], p("created_at", lower, None));
    assert_eq!(o.predicates[1], p("total", upper, Some("100")));
    assert_eq!(
        o.predicates[2].op,
        PredicateOp::Range {
            lower: true,
            upper: true
        }
    );
}

#[test]
fn null_tests_and_boolean_columns() {
    let s = ok(
        "SELECT 1 FROM customers WHERE deleted_at IS NULL AND email IS NOT NULL AND active \
                AND NOT region AND name = true",
    );
    let c = access(&s, "customers");
    assert_eq!(
        c.predicates,
        vec![
            p("deleted_at", PredicateOp::IsNull, None),
            p("email", PredicateOp::IsNotNull, None),
            p("active", PredicateOp::Bool { value: true }, Some("true")),
            p("region", PredicateOp::Bool { value: false }, Some("false")),
            p("name", PredicateOp::Bool { value: true }, Some("true")),
        ]
    );
}

#[test]
fn like_prefix_is_searchable_and_a_leading_wildcard_is_other() {
    let s = ok("SELECT 1 FROM customers WHERE email LIKE 'abc%' AND name LIKE '%abc'");
    let c = access(&s, "customers");
    assert_eq!(
        c.predicates[0],
        p("email", PredicateOp::LikePrefix, Some("'abc%'"))
    );
    assert_eq!(c.predicates[1], p("name", PredicateOp::Other, None));
}

#[test]
fn expression_key_is_deparsed_without_the_qualifier() {
    let s = ok("SELECT c.id FROM customers c WHERE lower(c.email) = $1");
    let c = access(&s, "customers");
    assert_eq!(
        c.predicates[0].key,
        KeyExpr::Expression {
            sql: "lower(email)".into(),
            columns: vec!["email".into()]
        }
    );
    assert_eq!(c.predicates[0].op, PredicateOp::Eq);
}

#[test]
fn same_table_column_comparison_and_volatile_function_are_other() {
    let s = ok("SELECT 1 FROM orders WHERE total > id AND customer_id = random()");
    let o = access(&s, "orders");
    assert_eq!(o.predicates.len(), 2);
    assert!(
        o.predicates.iter().all(|p| p.op == PredicateOp::Other),
        "{:?}",
        o.predicates
    );
}

#[test]
fn or_across_columns_of_one_table_is_an_or_group() {
    let s = ok("SELECT 1 FROM customers WHERE email = $1 OR (name = $2 AND region = 'eu')");
    let c = access(&s, "customers");
    assert!(c.predicates.is_empty());
    assert_eq!(
        c.or_groups,
        vec![
            vec![p("email", PredicateOp::Eq, None)],
            vec![
                p("name", PredicateOp::Eq, None),
                p("region", PredicateOp::Eq, Some("'eu'"))
            ],
        ]
    );
}

#[test]
fn or_of_equalities_on_one_column_is_an_in() {
    let s = ok("SELECT 1 FROM orders WHERE status = 'a' OR status = 'b'");
    assert_eq!(
        access(&s, "orders").predicates[0].op,
        PredicateOp::In { values: Some(2) }
    );
}

#[test]
fn or_across_two_tables_searches_nothing() {
    let s = ok("SELECT 1 FROM orders o, customers c WHERE o.customer_id = c.id AND (o.status = 'a' OR c.region = 'eu')");
    assert!(access(&s, "orders").or_groups.is_empty());
    assert!(access(&s, "orders").predicates.is_empty());
    assert!(access(&s, "customers").or_groups.is_empty());
}

#[test]
fn explicit_join_keys_on_both_sides_and_inner_on_conditions_are_predicates() {
    let s = ok(
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id AND c.region = 'eu'",
    );
    assert_eq!(access(&s, "orders").join_keys, vec!["customer_id"]);
    let c = access(&s, "customers");
    assert_eq!(c.join_keys, vec!["id"]);
    assert_eq!(
        c.predicates,
        vec![p("region", PredicateOp::Eq, Some("'eu'"))]
    );
}

#[test]
fn implicit_join_in_where_gives_join_keys() {
    let s = ok("SELECT 1 FROM orders o, items i WHERE i.order_id = o.id AND i.qty > 1");
    assert_eq!(access(&s, "orders").join_keys, vec!["id"]);
    assert_eq!(access(&s, "items").join_keys, vec!["order_id"]);
}

#[test]
fn join_using_gives_join_keys() {
    let s = ok("SELECT 1 FROM orders JOIN items USING (id)");
    assert_eq!(access(&s, "orders").join_keys, vec!["id"]);
    assert_eq!(access(&s, "items").join_keys, vec!["id"]);
}

#[test]
fn left_join_on_keeps_only_the_nullable_side_conditions() {
    let s = ok(
        "SELECT 1 FROM customers c LEFT JOIN orders o ON o.customer_id = c.id \
                AND o.status = 'open' AND c.active",
    );
    let c = access(&s, "customers");
    assert!(c.predicates.is_empty(), "{:?}", c.predicates);
    assert_eq!(c.join_keys, vec!["id"]);
    assert_eq!(
        access(&s, "orders").predicates,
        vec![p("status", PredicateOp::Eq, Some("'open'"))]
    );
}

#[test]
fn unqualified_columns_resolve_to_the_one_table_that_has_them_and_ambiguous_ones_are_skipped() {
    let s = ok(
        "SELECT 1 FROM orders o JOIN customers c ON c.id = o.customer_id \
                WHERE email = 'x' AND id = 3",
    );
    assert_eq!(
        access(&s, "customers").predicates,
        vec![p("email", PredicateOp::Eq, Some("'x'"))]
    );
    assert!(access(&s, "orders").predicates.is_empty());
}

#[test]
fn subquery_in_from_is_walked_and_its_plain_columns_reach_the_table() {
    let s = ok(
        "SELECT s.total FROM (SELECT id, total, status FROM orders WHERE is_paid) s \
                WHERE s.status = 'x'",
    );
    let o = access(&s, "orders");
    assert_eq!(
        o.predicates,
        vec![
            p("is_paid", PredicateOp::Bool { value: true }, Some("true")),
            p("status", PredicateOp::Eq, Some("'x'")),
        ]
    );
}

#[test]
fn cte_body_is_walked_and_its_name_is_no_table() {
    let s = ok(
        "WITH recent AS (SELECT customer_id FROM orders WHERE created_at > $1) \
                SELECT c.email FROM customers c JOIN recent r ON r.customer_id = c.id",
    );
    assert!(s.unknown_tables.is_empty(), "{:?}", s.unknown_tables);
    let o = access(&s, "orders");
    assert_eq!(o.predicates[0].key, col("created_at"));
    assert_eq!(o.join_keys, vec!["customer_id"]);
    assert_eq!(access(&s, "customers").join_keys, vec!["id"]);
}

#[test]
fn cte_that_shadows_a_table_name_is_the_cte() {
    let s = ok(
        "WITH orders AS (SELECT * FROM items WHERE qty > 5) SELECT * FROM orders WHERE sku = 'x'",
    );
    assert!(
        s.accesses.iter().all(|a| a.table != "orders"),
        "{:#?}",
        s.accesses
    );
    let i = access(&s, "items");
    assert_eq!(i.predicates.len(), 2, "{:?}", i.predicates);
    assert_eq!(i.predicates[1], p("sku", PredicateOp::Eq, Some("'x'")));
    assert!(i.reads_all);
}

#[test]
fn recursive_cte_naming_itself_is_not_an_unknown_table() {
    let s = ok(
        "WITH RECURSIVE t(n) AS (SELECT id FROM items WHERE id = 1 UNION ALL \
                SELECT n + 1 FROM t WHERE n < 10) SELECT n FROM t",
    );
    assert!(s.unknown_tables.is_empty(), "{:?}", s.unknown_tables);
    assert_eq!(access(&s, "items").predicates.len(), 1);
}

#[test]
fn in_subselect_and_exists_join_with_the_outer_table() {
    let s = ok("SELECT c.email FROM customers c WHERE c.id IN (SELECT customer_id FROM orders WHERE status = 'x') \
                AND EXISTS (SELECT 1 FROM items i WHERE i.order_id = c.id)");
    assert_eq!(access(&s, "customers").join_keys, vec!["id"]);
    let o = access(&s, "orders");
    assert_eq!(o.join_keys, vec!["customer_id"]);
    assert_eq!(
        o.predicates,
        vec![p("status", PredicateOp::Eq, Some("'x'"))]
    );
    assert_eq!(access(&s, "items").join_keys, vec!["order_id"]);
}

#[test]
fn scalar_subquery_keeps_its_own_order_by_and_limit() {
    let s = ok(
        "SELECT c.name, (SELECT o.total FROM orders o WHERE o.customer_id = c.id \
                ORDER BY o.created_at DESC LIMIT 1) FROM customers c WHERE c.region = $1",
    );
    let o = access(&s, "orders");
    assert_eq!(o.limit, Some(1));
    assert_eq!(
        o.order_by,
        vec![SortKey {
            key: col("created_at"),
            desc: true,
            nulls_first: None
        }]
    );
    assert_eq!(o.join_keys, vec!["customer_id"]);
    let c = access(&s, "customers");
    assert_eq!(c.limit, None);
    assert_eq!(c.predicates, vec![p("region", PredicateOp::Eq, None)]);
}

#[test]
fn union_branches_are_each_an_access() {
    let s = ok("SELECT id FROM orders WHERE status = 'a' UNION SELECT id FROM customers WHERE region = 'b'");
    assert_eq!(access(&s, "orders").predicates.len(), 1);
    assert_eq!(access(&s, "customers").predicates.len(), 1);
}

#[test]
fn update_and_delete_where_counts_and_they_are_not_read_only() {
    let s = ok("UPDATE orders SET status = 'done' WHERE customer_id = $1 AND status = 'open'");
    assert!(!s.read_only);
    assert_eq!(access(&s, "orders").predicates.len(), 2);
    let s = ok("DELETE FROM items i USING orders o WHERE i.order_id = o.id AND o.created_at < $1");
    assert!(!s.read_only);
    assert_eq!(access(&s, "items").join_keys, vec!["order_id"]);
    assert_eq!(access(&s, "orders").predicates[0].key, col("created_at"));
}

#[test]
fn insert_select_walks_the_select() {
    let s =
        ok("INSERT INTO items (order_id, sku) SELECT id, note FROM orders WHERE status = 'new'");
    assert!(!s.read_only);
    assert_eq!(s.accesses.len(), 1);
    assert_eq!(access(&s, "orders").predicates.len(), 1);
}

#[test]
fn insert_values_is_not_indexable() {
    assert_eq!(
        shape("INSERT INTO items (order_id) VALUES (1)", &catalog()),
        Err(Reason::NotIndexable)
    );
}

#[test]
fn select_for_update_is_not_read_only() {
    let s = ok("SELECT * FROM orders WHERE id = $1 FOR UPDATE");
    assert!(!s.read_only);
}

#[test]
fn order_by_of_one_table_with_directions_and_nulls() {
    let s = ok("SELECT id FROM orders WHERE customer_id = $1 ORDER BY created_at DESC, id ASC NULLS FIRST LIMIT 20");
    let o = access(&s, "orders");
    assert_eq!(
        o.order_by,
        vec![
            SortKey {
                key: col("created_at"),
                desc: true,
                nulls_first: None
            },
            SortKey {
                key: col("id"),
                desc: false,
                nulls_first: Some(true)
            },
        ]
    );
    assert_eq!(o.limit, Some(20));
}

#[test]
fn order_by_across_two_tables_is_no_ones() {
    let s = ok("SELECT 1 FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY c.name, o.created_at");
    assert!(access(&s, "orders").order_by.is_empty());
    assert!(access(&s, "customers").order_by.is_empty());
}

#[test]
fn order_by_position_and_output_alias_name_the_select_list_expression() {
    let s = ok("SELECT created_at AS t, total FROM orders ORDER BY t DESC, 2");
    let keys: Vec<_> = access(&s, "orders")
        .order_by
        .iter()
        .map(|k| k.key.clone())
        .collect();
    assert_eq!(keys, vec![col("created_at"), col("total")]);
}

#[test]
fn limit_parameter_is_recorded_as_parameter_limit() {
    let s = ok("SELECT id FROM orders ORDER BY created_at LIMIT $1");
    assert_eq!(access(&s, "orders").limit, Some(PARAMETER_LIMIT));
    let s = ok("SELECT id FROM orders LIMIT ALL");
    assert_eq!(access(&s, "orders").limit, None);
}

#[test]
fn group_by_of_one_table() {
    let s = ok("SELECT status, count(*) FROM orders GROUP BY status");
    let o = access(&s, "orders");
    assert_eq!(o.group_by, vec![col("status")]);
    assert_eq!(o.reads, vec!["status"]);
    assert!(!o.reads_all);
}

#[test]
fn star_and_table_star_set_reads_all() {
    let s = ok("SELECT o.*, c.email FROM orders o JOIN customers c ON c.id = o.customer_id");
    assert!(access(&s, "orders").reads_all);
    assert!(access(&s, "orders").reads.is_empty());
    let c = access(&s, "customers");
    assert!(!c.reads_all);
    assert_eq!(c.reads, vec!["id", "email"]);
    let s = ok("SELECT * FROM orders");
    assert!(access(&s, "orders").reads_all);
}

#[test]
fn hostile_quoted_names_resolve_and_deparse_quoted() {
    let s =
        ok(r#"SELECT t."x" FROM "we""ird"."Tab le" t WHERE lower(t."sel ect") = 'a' AND "Id" > 3"#);
    let t = access(&s, "Tab le");
    assert_eq!(t.schema, "we\"ird");
    assert_eq!(
        t.predicates[0].key,
        KeyExpr::Expression {
            sql: "lower(\"sel ect\")".into(),
            columns: vec!["sel ect".into()]
        }
    );
    assert_eq!(t.predicates[1].key, col("Id"));
}

#[test]
fn statement_from_pg_stat_statements_with_parameters() {
    let s = ok(
        "SELECT o.id, o.total FROM orders o WHERE o.customer_id = $1 AND o.created_at > $2 \
                ORDER BY o.created_at DESC LIMIT $3",
    );
    let o = access(&s, "orders");
    assert_eq!(o.predicates.len(), 2);
    assert!(o.predicates.iter().all(|p| p.constant.is_none()));
    assert_eq!(o.limit, Some(PARAMETER_LIMIT));
}

#[test]
fn unknown_tables_are_listed_and_all_unknown_is_an_error() {
    let s = ok("SELECT 1 FROM orders o JOIN gone.lost l ON l.id = o.id WHERE o.status = 'a'");
    assert_eq!(s.unknown_tables, vec!["gone.lost"]);
    assert_eq!(access(&s, "orders").predicates.len(), 1);
    assert_eq!(
        shape("SELECT * FROM nowhere WHERE a = 1", &catalog()),
        Err(Reason::UnknownTable {
            table: "nowhere".into()
        })
    );
}

#[test]
fn unparseable_ddl_and_tableless_statements_are_refused_with_their_reason() {
    assert!(matches!(
        shape("SELEC * FORM orders", &catalog()),
        Err(Reason::NotParseable { .. })
    ));
    assert_eq!(
        shape("CREATE TABLE x (a int)", &catalog()),
        Err(Reason::NotIndexable)
    );
    assert_eq!(
        shape("VACUUM orders", &catalog()),
        Err(Reason::NotIndexable)
    );
    assert_eq!(shape("SELECT 1", &catalog()), Err(Reason::NotIndexable));
}

#[test]
fn star_subquery_and_cte_columns_reach_the_table() {
    let s = ok(
        "WITH recent AS (SELECT * FROM orders WHERE created_at > $1) \
                SELECT r.id FROM recent r WHERE r.status = 'x'",
    );
    let o = access(&s, "orders");
    assert_eq!(o.predicates.len(), 2, "{:?}", o.predicates);
    assert_eq!(o.predicates[1], p("status", PredicateOp::Eq, Some("'x'")));
    let s = ok(
        "SELECT * FROM (SELECT o.*, 1 AS one FROM orders o) s WHERE s.customer_id = 3 AND one = 1",
    );
    assert_eq!(
        access(&s, "orders").predicates,
        vec![p("customer_id", PredicateOp::Eq, Some("3"))]
    );
}

#[test]
fn expressions_with_parameters_or_rows_are_no_index_keys() {
    let s = ok(
        "SELECT 1 FROM orders WHERE total + $1 > 5 AND (customer_id, status) = ($2, 'x') \
                AND date_trunc('day', created_at) = $3",
    );
    let o = access(&s, "orders");
    assert_eq!(o.predicates.len(), 1, "{:?}", o.predicates);
    assert!(
        matches!(&o.predicates[0].key, KeyExpr::Expression { sql, .. } if sql == "date_trunc('day', created_at)")
    );
}

#[test]
fn not_exists_and_any_array_literal() {
    let s = ok("SELECT 1 FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) \
                AND c.region = ANY(ARRAY['eu', 'us'])");
    assert_eq!(access(&s, "orders").join_keys, vec!["customer_id"]);
    let c = access(&s, "customers");
    assert_eq!(c.join_keys, vec!["id"]);
    assert_eq!(c.predicates[0].op, PredicateOp::In { values: Some(2) });
}

#[test]
fn fetch_first_is_a_limit() {
    let s = ok("SELECT id FROM orders ORDER BY created_at FETCH FIRST 3 ROWS ONLY");
    assert_eq!(access(&s, "orders").limit, Some(3));
}

#[test]
fn parameters_record_the_key_and_role_they_stand_for() {
    use crate::indexes::model::{ParamKey, ParamRole, ParamUse};
    let s = ok("SELECT $11, o.* FROM orders o \
         WHERE o.status = $1 AND $2 < o.total AND o.customer_id IN ($3, $4) \
         AND o.created_at BETWEEN $5 AND $6 AND o.note LIKE $7 AND o.id = ANY($8::int[]) \
         AND lower(o.note) = $12 AND o.total + $13 > 5 \
         ORDER BY created_at LIMIT $9 OFFSET $10");
    let on = |number, role, key: KeyExpr| ParamUse {
        number,
        role,
        key: Some(ParamKey {
            schema: "public".into(),
            table: "orders".into(),
            key,
        }),
    };
    let mut got = s.params.clone();
    got.sort_by_key(|u| u.number);
    assert_eq!(
        got,
        vec![
            on(1, ParamRole::Eq, col("status")),
            on(2, ParamRole::Lower, col("total")),
            on(3, ParamRole::InItem { position: 0 }, col("customer_id")),
            on(4, ParamRole::InItem { position: 1 }, col("customer_id")),
            on(5, ParamRole::BetweenLow, col("created_at")),
            on(6, ParamRole::BetweenHigh, col("created_at")),
            on(7, ParamRole::Pattern, col("note")),
            on(8, ParamRole::AnyArray, col("id")),
            ParamUse {
                number: 9,
                role: ParamRole::Limit,
                key: None,
            },
            ParamUse {
                number: 10,
                role: ParamRole::Offset,
                key: None,
            },
            on(
                12,
                ParamRole::Eq,
                KeyExpr::Expression {
                    sql: "lower(note)".into(),
                    columns: vec!["note".into()],
                }
            ),
        ],
        "{s:#?}"
    );
}

#[test]
fn parameters_in_subqueries_and_joins_reach_their_table() {
    use crate::indexes::model::ParamRole;
    let s = ok("WITH recent AS (SELECT * FROM orders WHERE created_at > $1) \
         SELECT * FROM recent r JOIN customers c ON c.id = r.customer_id AND c.region = $2 \
         WHERE r.status IN ($3) AND EXISTS (SELECT 1 FROM items i WHERE i.order_id = r.id AND i.qty >= $4)");
    let find = |n: u32| {
        let u = s.params.iter().find(|u| u.number == n).expect("use");
        let k = u.key.as_ref().expect("key");
        (k.table.to_string(), k.key.clone(), u.role)
    };
    assert_eq!(
        find(1),
        ("orders".into(), col("created_at"), ParamRole::Lower)
    );
    assert_eq!(find(2), ("customers".into(), col("region"), ParamRole::Eq));
    assert_eq!(
        find(3),
        (
            "orders".into(),
            col("status"),
            ParamRole::InItem { position: 0 }
        )
    );
    assert_eq!(find(4), ("items".into(), col("qty"), ParamRole::Lower));
}
