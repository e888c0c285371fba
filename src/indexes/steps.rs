//! The index advisor's answers as plan steps for the executor ([`crate::apply`]): building the
//! suggested indexes ([`create_plan`]) and dropping the ones analyze found unused, duplicate,
//! redundant or invalid ([`drop_plan`]). Pure: the steps are data, run elsewhere.
//!
//! A build is `CREATE INDEX CONCURRENTLY`, outside any transaction, guarded by
//! [`Precondition::NoEquivalentIndex`] (re-checked under the executor's lock: the name is
//! free and nobody built the same index under another name meanwhile), verified valid in
//! pg_index, undone by `DROP INDEX CONCURRENTLY`; each table built on is analyzed afterwards
//! so that the planner has statistics for expression keys. A drop is undone by building the
//! index again from its definition.

use std::collections::BTreeSet;

use serde_json::Value;

use super::model::{Advice, DropSuggestion, Suggestion};
use crate::advise::Finding;
use crate::ident::QualifiedName;
use crate::plan::{Action, Cost, Plan, Precondition, Step, Verify};
use crate::snapshot::{Index, Snapshot};

/// The analyze rules whose findings advise dropping an index.
pub const DROP_RULES: &[&str] = &[
    crate::advise::unused_indexes::RULE,
    crate::advise::duplicate_indexes::DUPLICATE_RULE,
    crate::advise::duplicate_indexes::REDUNDANT_RULE,
    crate::advise::invalid_indexes::RULE,
];

/// The step that builds one suggestion.
pub fn create_step(s: &Suggestion) -> Step {
    let c = &s.candidate;
    let index = QualifiedName::new(&c.schema, &s.name);
    let keys = super::model::Candidate {
        predicate: None,
        ..c.clone()
    }
    .key_sql();
    Step {
        precondition: Some(Precondition::NoEquivalentIndex {
            index: index.clone(),
            table: c.table_name(),
            keys,
            predicate: c.predicate.clone(),
        }),
        verify: Some(Verify::IndexValid {
            index: index.clone(),
        }),
        undo: Some(Action::Sql {
            sql: format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"),
        }),
        ..Step::sql(
            c.ddl(&s.name, true),
            crate::plan::Lock::ShareUpdateExclusive,
            false,
        )
    }
    .with_cost(Cost {
        bytes: u64::try_from(s.size_bytes).ok(),
        needs_restart: false,
    })
    .with_note(format!(
        "about {}, gains {}",
        crate::report::bytes(s.size_bytes),
        format_benefit(s.benefit)
    ))
}

fn format_benefit(b: f64) -> String {
    format!("{b:.0} of weighted cost")
}

/// The plan that builds every suggestion, one at a time, then analyzes each table built on
/// (once, after its last index).
pub fn create_plan(advice: &Advice) -> Plan {
    let mut plan = Plan::new();
    let mut tables: Vec<QualifiedName> = Vec::new();
    for s in &advice.suggestions {
        plan.push(create_step(s));
        let t = s.candidate.table_name();
        if !tables.contains(&t) {
            tables.push(t);
        }
    }
    for t in &tables {
        plan.push(Step::analyze(t).with_note("statistics for the new indexes"));
    }
    plan
}

/// The plan that drops the indexes the findings of the unused, duplicate, redundant and
/// invalid index rules name (each once; other findings and fixes are ignored), each with its
/// undo (the index built again from its definition, when the snapshot has it; an invalid
/// index is not rebuilt) and the space it returns in its note.
pub fn drop_plan(findings: &[Finding], snap: &Snapshot) -> Plan {
    let mut plan = Plan::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for f in findings {
        if !DROP_RULES.contains(&f.rule.as_str()) || !f.fix.iter().any(is_drop) {
            continue;
        }
        let Some(idx) = snap.indexes.iter().find(|i| i.qualified_name() == f.object) else {
            continue;
        };
        if !seen.insert((idx.schema.to_string(), idx.name.to_string())) {
            continue;
        }
        plan.push(drop_step(idx, f));
    }
    plan
}

/// The drops of [`drop_plan`] as advice to show: index, rule, why, space, DDL.
pub fn drop_suggestions(findings: &[Finding], snap: &Snapshot) -> Vec<DropSuggestion> {
    let plan = drop_plan(findings, snap);
    plan.steps
        .iter()
        .filter_map(|step| {
            let ddl = step.action.sql()?;
            let (f, idx) = findings.iter().find_map(|f| {
                let idx = snap.indexes.iter().find(|i| {
                    i.qualified_name() == f.object
                        && ddl.ends_with(&QualifiedName::new(&i.schema, &i.name).to_string())
                })?;
                DROP_RULES.contains(&f.rule.as_str()).then_some((f, idx))
            })?;
            Some(DropSuggestion {
                index: QualifiedName::new(&idx.schema, &idx.name).to_string(),
                rule: f.rule.clone(),
                message: f.message.clone(),
                size_bytes: idx.size_bytes,
                ddl,
            })
        })
        .collect()
}

fn is_drop(s: &Step) -> bool {
    s.action
        .sql()
        .is_some_and(|sql| sql.starts_with("DROP INDEX CONCURRENTLY"))
}

/// `DROP INDEX CONCURRENTLY` of `idx`, undone by building it again.
fn drop_step(idx: &Index, f: &Finding) -> Step {
    let definition = if idx.definition.is_empty() {
        f.evidence
            .get("definition")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    } else {
        idx.definition.to_string()
    };
    let size = crate::report::bytes(idx.size_bytes);
    let mut step = Step::drop_index(&idx.schema, &idx.name);
    if !idx.is_valid {
        return step.with_note(format!(
            "{}: returns {size}; invalid, so nothing to rebuild on undo",
            f.rule
        ));
    }
    if definition.is_empty() {
        return step.with_note(format!(
            "{}: returns {size}; its definition was not read, so it cannot be undone",
            f.rule
        ));
    }
    step.undo = Some(Action::Sql {
        sql: crate::advise::invalid_indexes::concurrent_definition(
            definition.trim_end_matches(';'),
        ),
    });
    step.with_note(format!("{}: returns {size}", f.rule))
}

/// What an index is, as the parser reads a `CREATE INDEX` statement: access method, keys
/// (with order, NULLS, opclass and collation), INCLUDE columns and predicate, with its name,
/// table, CONCURRENTLY, UNIQUE, storage options and tablespace left out, and with type casts
/// removed (pg_get_indexdef writes `'open'::text` and `(email)::text` where the DDL had
/// `'open'` and `email`). Two definitions with equal signatures are the same index for
/// reads. None when `sql` is not one CREATE INDEX statement.
pub fn index_signature(sql: &str) -> Option<Value> {
    let parsed = pg_query::parse(sql).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let Some(pg_query::NodeEnum::IndexStmt(i)) = stmt.stmt.as_ref()?.node.as_ref() else {
        return None;
    };
    let v = serde_json::json!({
        "method": i.access_method,
        "keys": i.index_params,
        "include": i.index_including_params,
        "where": i.where_clause,
    });
    Some(normalized(v))
}

/// `v` without source locations and with each type cast replaced by what it casts.
fn normalized(v: Value) -> Value {
    match v {
        Value::Object(mut o) => {
            // A Node holding a TypeCast: the node it casts instead.
            if let Some(Value::Object(inner)) = o.get_mut("node") {
                if let Some(Value::Object(cast)) = inner.get_mut("TypeCast") {
                    if let Some(arg) = cast.remove("arg") {
                        return normalized(arg);
                    }
                }
            }
            o.remove("location");
            Value::Object(o.into_iter().map(|(k, v)| (k, normalized(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(normalized).collect()),
        other => other,
    }
}

/// The signature of the index a [`Precondition::NoEquivalentIndex`] plans on `table`.
pub fn planned_signature(
    table: &QualifiedName,
    keys: &str,
    predicate: Option<&str>,
) -> Option<Value> {
    let mut sql = format!("CREATE INDEX ON {table} {keys}");
    if let Some(p) = predicate {
        sql.push_str(" WHERE ");
        sql.push_str(p);
    }
    index_signature(&sql)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indexes::model::{Candidate, Helped, KeyExpr, SortKey};
    use crate::plan::Lock;

    fn suggestion(table: &str, cols: &[&str], predicate: Option<&str>) -> Suggestion {
        let mut c = Candidate::btree(
            "app",
            table,
            cols.iter()
                .map(|n| SortKey {
                    key: KeyExpr::column(*n),
                    desc: false,
                    nulls_first: None,
                })
                .collect(),
        );
        c.predicate = predicate.map(str::to_string);
        let name = c.index_name();
        Suggestion {
            ddl: c.ddl(&name, true),
            name,
            candidate: c,
            size_bytes: 16384,
            benefit: 1000.0,
            helps: vec![Helped {
                fingerprint: "f".into(),
                text: "SELECT 1".into(),
                calls: 1,
                cost_before: 10.0,
                cost_after: 1.0,
            }],
        }
    }

    #[test]
    fn create_plan_builds_each_index_concurrently_then_analyzes_each_table_once() {
        let advice = Advice {
            suggestions: vec![
                suggestion("or\"ders", &["customer_id"], None),
                suggestion("items", &["sku"], None),
                suggestion(
                    "or\"ders",
                    &["status", "created_at"],
                    Some("\"status\" = 'open'"),
                ),
            ],
            ..Advice::default()
        };
        let plan = create_plan(&advice);
        assert_eq!(plan.len(), 5);
        assert!(plan.after.iter().all(Vec::is_empty));
        let s = &plan.steps[0];
        assert_eq!(
            s.action.sql().unwrap(),
            "CREATE INDEX CONCURRENTLY \"or\"\"ders_customer_id_idx\" ON \"app\".\"or\"\"ders\" \
             USING \"btree\" (\"customer_id\")"
        );
        assert!(!s.transactional);
        assert_eq!(s.lock, Lock::ShareUpdateExclusive);
        let index = QualifiedName::new("app", "or\"ders_customer_id_idx");
        assert_eq!(
            s.precondition,
            Some(Precondition::NoEquivalentIndex {
                index: index.clone(),
                table: QualifiedName::new("app", "or\"ders"),
                keys: "USING \"btree\" (\"customer_id\")".into(),
                predicate: None,
            })
        );
        assert_eq!(s.verify, Some(Verify::IndexValid { index }));
        assert_eq!(
            s.undo.as_ref().unwrap().sql().unwrap(),
            "DROP INDEX CONCURRENTLY IF EXISTS \"app\".\"or\"\"ders_customer_id_idx\""
        );
        assert_eq!(s.cost.as_ref().unwrap().bytes, Some(16384));
        match &plan.steps[2].precondition {
            Some(Precondition::NoEquivalentIndex { predicate, .. }) => {
                assert_eq!(predicate.as_deref(), Some("\"status\" = 'open'"))
            }
            other => panic!("{other:?}"),
        }
        let analyze: Vec<String> = plan.steps[3..]
            .iter()
            .map(|s| s.action.sql().unwrap())
            .collect();
        assert_eq!(
            analyze,
            vec![
                "ANALYZE \"app\".\"or\"\"ders\"",
                "ANALYZE \"app\".\"items\""
            ]
        );
        assert!(plan.steps[3].transactional && plan.steps[3].undo.is_none());
        let script = plan.script();
        assert!(
            script.starts_with(
                "CREATE INDEX CONCURRENTLY \"or\"\"ders_customer_id_idx\" ON \"app\".\"or\"\"ders\" \
                 USING \"btree\" (\"customer_id\");  -- about 16.0 kB, gains 1000 of weighted cost\n"
            ),
            "{script}"
        );
        assert!(script.contains("WHERE \"status\" = 'open';"), "{script}");
    }

    #[test]
    fn signatures_match_the_servers_definition_of_the_same_index() {
        let t = QualifiedName::new("public", "orders");
        let planned = planned_signature(
            &t,
            "USING \"btree\" (\"customer_id\", \"created_at\" DESC) INCLUDE (\"total\")",
            Some("\"status\" = 'open'"),
        )
        .unwrap();
        let server = "CREATE INDEX other_name ON public.orders USING btree (customer_id, \
                      created_at DESC) INCLUDE (total) WHERE (status = 'open'::text)";
        assert_eq!(index_signature(server).unwrap(), planned);
        let unique = "CREATE UNIQUE INDEX u ON ONLY public.orders USING btree (customer_id, \
                      created_at DESC) INCLUDE (total) WHERE (status = 'open'::text)";
        assert_eq!(
            index_signature(unique).unwrap(),
            planned,
            "serves the same reads"
        );
        for different in [
            "CREATE INDEX x ON public.orders USING btree (customer_id, created_at) INCLUDE (total) WHERE (status = 'open'::text)",
            "CREATE INDEX x ON public.orders USING btree (customer_id, created_at DESC) WHERE (status = 'open'::text)",
            "CREATE INDEX x ON public.orders USING btree (customer_id, created_at DESC) INCLUDE (total) WHERE (status = 'closed'::text)",
            "CREATE INDEX x ON public.orders USING hash (customer_id)",
        ] {
            assert_ne!(index_signature(different).unwrap(), planned, "{different}");
        }
        let expr = planned_signature(&t, "USING \"btree\" ((lower(\"email\")))", None).unwrap();
        assert_eq!(
            index_signature("CREATE INDEX e ON public.orders USING btree (lower((email)::text))")
                .unwrap(),
            expr
        );
        assert_eq!(index_signature("SELECT 1"), None);
    }

    fn finding(rule: &str, idx: &Index) -> Finding {
        let mut f = Finding::new(
            rule,
            crate::advise::Severity::Warning,
            idx.qualified_name(),
            "m",
        );
        f.fix = vec![Step::drop_index(&idx.schema, &idx.name)];
        f
    }

    fn index(name: &str, valid: bool, definition: &str) -> Index {
        Index {
            schema: "public".into(),
            table: "t".into(),
            name: name.into(),
            definition: definition.into(),
            access_method: "btree".into(),
            size_bytes: 2 * 1024 * 1024,
            is_valid: valid,
            is_ready: true,
            is_live: true,
            ..Index::default()
        }
    }

    #[test]
    fn drop_plan_takes_the_drop_findings_once_each_with_an_undo_from_the_definition() {
        let target = crate::snapshot::TargetInfo {
            host: "h".into(),
            port: 5432,
            database: "d".into(),
            user: "u".into(),
        };
        let mut snap = Snapshot::new(target, chrono::Utc::now());
        snap.indexes = vec![
            index("t_a", true, "CREATE INDEX t_a ON public.t USING btree (a)"),
            index("t_b", false, "CREATE INDEX t_b ON public.t USING btree (b)"),
            index("t_c", true, ""),
            index("t_d", true, "CREATE INDEX t_d ON public.t USING btree (d)"),
        ];
        let i = &snap.indexes;
        let mut other = finding("seq_scans", &i[3]);
        other.fix = vec![Step::analyze(&QualifiedName::new("public", "t"))];
        let findings = vec![
            finding(crate::advise::unused_indexes::RULE, &i[0]),
            finding(crate::advise::duplicate_indexes::REDUNDANT_RULE, &i[0]),
            finding(crate::advise::invalid_indexes::RULE, &i[1]),
            finding(crate::advise::duplicate_indexes::DUPLICATE_RULE, &i[2]),
            other,
        ];
        let plan = drop_plan(&findings, &snap);
        let sqls: Vec<String> = plan.steps.iter().map(|s| s.action.sql().unwrap()).collect();
        assert_eq!(
            sqls,
            vec![
                "DROP INDEX CONCURRENTLY \"public\".\"t_a\"",
                "DROP INDEX CONCURRENTLY \"public\".\"t_b\"",
                "DROP INDEX CONCURRENTLY \"public\".\"t_c\"",
            ]
        );
        assert!(plan.steps.iter().all(|s| !s.transactional));
        assert_eq!(
            plan.steps[0].undo.as_ref().unwrap().sql().unwrap(),
            "CREATE INDEX CONCURRENTLY t_a ON public.t USING btree (a)"
        );
        assert!(plan.steps[0]
            .note
            .as_deref()
            .unwrap()
            .contains("returns 2.0 MB"));
        assert!(
            plan.steps[1].undo.is_none(),
            "an invalid index is not rebuilt"
        );
        assert!(plan.steps[2].undo.is_none());
        assert!(plan.steps[2]
            .note
            .as_deref()
            .unwrap()
            .contains("cannot be undone"));
        assert!(plan.script().contains(
            "DROP INDEX CONCURRENTLY \"public\".\"t_a\";  -- unused_index: returns 2.0 MB"
        ));
    }
}
