//! Whether an existing index already serves a candidate: same leading keys (the equality
//! prefix in any order, then the rest in order with one direction or its reverse, as a
//! btree scans both ways), its INCLUDE columns among the index's, the same partial
//! predicate; a unique index (or primary key) whose keys are all equalities of the
//! candidate returns at most one row already. Operator classes count: a plain btree on a
//! column whose collation is not C does not serve a `text_pattern_ops` candidate (a LIKE
//! prefix), the `text_pattern_ops` index does.
//!
//! The index's keys and directions come from its definition (pg_get_indexdef, parsed with
//! pg_query) when the catalog has it, else from its key columns (taken as ascending).

use pg_query::{Node, NodeEnum};

use crate::indexes::model::{Candidate, Catalog, KeyExpr, SortKey};
use crate::indexes::shape::deparse_expression;
use crate::snapshot::Index;

/// The existing valid indexes of the catalog, their keys and predicates parsed once.
pub(super) struct Existing<'c> {
    indexes: Vec<Known<'c>>,
}

struct Known<'c> {
    index: &'c Index,
    keys: Vec<IndexKey>,
    /// The partial predicate as pg_query deparses it.
    predicate: Option<String>,
}

impl<'c> Existing<'c> {
    pub(super) fn new(catalog: &'c Catalog) -> Self {
        let indexes = catalog
            .indexes
            .iter()
            .filter(|ix| ix.is_valid)
            .map(|index| Known {
                index,
                keys: index_keys(index),
                predicate: index.predicate.as_deref().and_then(condition_text),
            })
            .collect();
        Existing { indexes }
    }

    /// The name of an existing valid index that serves the candidate, if any.
    pub(super) fn serving(&self, c: &Candidate, n_eq: usize) -> Option<String> {
        let predicate = c.predicate.as_deref().and_then(condition_text);
        self.indexes
            .iter()
            .filter(|k| k.index.schema == c.schema && k.index.table == c.table)
            .find(|k| k.serves(c, n_eq, predicate.as_deref()))
            .map(|k| k.index.name.to_string())
    }
}

/// One key of an existing index: the column name or the deparsed expression, and its
/// operator class where the definition names one (pg_get_indexdef names only those that are
/// not the type's default).
struct IndexKey {
    text: String,
    desc: bool,
    opclass: Option<String>,
}

impl Known<'_> {
    fn serves(&self, c: &Candidate, n_eq: usize, predicate: Option<&str>) -> bool {
        let ix = self.index;
        if !ix.access_method.is_empty() && ix.access_method != c.method {
            return false;
        }
        if ix.predicate.is_some() != c.predicate.is_some()
            || (c.predicate.is_some()
                && (predicate.is_none() || self.predicate.as_deref() != predicate))
        {
            return false;
        }
        let keys = &self.keys;
        let n_eq = n_eq.min(c.keys.len());
        let eq: Vec<(&SortKey, Option<&str>)> = (0..n_eq)
            .map(|i| (&c.keys[i], c.opclass(i).map(|o| o.as_str())))
            .collect();
        let rest: Vec<(&SortKey, Option<&str>)> = (n_eq..c.keys.len())
            .map(|i| (&c.keys[i], c.opclass(i).map(|o| o.as_str())))
            .collect();
        let unique = (ix.is_unique || ix.is_primary)
            && !keys.is_empty()
            && keys.len() <= n_eq
            && keys.iter().all(|k| eq.iter().any(|e| matches_eq(*e, k)));
        if unique {
            return true;
        }
        if keys.len() < c.keys.len() {
            return false;
        }
        let eq_served = eq
            .iter()
            .all(|e| keys[..n_eq].iter().any(|k| matches_eq(*e, k)));
        let pairs: Vec<(&SortKey, &IndexKey)> = rest
            .iter()
            .zip(&keys[n_eq..])
            .filter(|((s, opclass), k)| {
                matches(s, k) && same_opclass(*opclass, k.opclass.as_deref())
            })
            .map(|((s, _), k)| (*s, k))
            .collect();
        let rest_served = pairs.len() == rest.len()
            && (pairs.iter().all(|(s, k)| s.desc == k.desc)
                || pairs.iter().all(|(s, k)| s.desc != k.desc));
        eq_served && rest_served && includes(ix, keys, c)
    }
}

fn matches(s: &SortKey, k: &IndexKey) -> bool {
    match &s.key {
        KeyExpr::Column { name } => name == k.text.as_str(),
        KeyExpr::Expression { sql, .. } => *sql == k.text,
    }
}

/// An equality key is served by the same key with the same operator class, and a key with
/// the default class also by a pattern class (those keep `=`); a range or sort key only by
/// the same class: a default btree on a column whose collation is not C does not serve a
/// LIKE prefix, a `text_pattern_ops` one serves no ORDER BY or `<`.
fn matches_eq((s, opclass): (&SortKey, Option<&str>), k: &IndexKey) -> bool {
    matches(s, k)
        && (same_opclass(opclass, k.opclass.as_deref())
            || (opclass.is_none() && k.opclass.as_deref().is_some_and(is_pattern_opclass)))
}

fn same_opclass(a: Option<&str>, b: Option<&str>) -> bool {
    a.map(pattern_family) == b.map(pattern_family)
}

/// varchar_pattern_ops is an operator class of the text_pattern_ops family: one is the other.
fn pattern_family(opclass: &str) -> &str {
    match opclass {
        "varchar_pattern_ops" => "text_pattern_ops",
        other => other,
    }
}

fn is_pattern_opclass(opclass: &str) -> bool {
    matches!(
        opclass,
        "text_pattern_ops" | "varchar_pattern_ops" | "bpchar_pattern_ops"
    )
}

/// Every INCLUDE column of the candidate is a key or INCLUDE column of the index.
fn includes(ix: &Index, keys: &[IndexKey], c: &Candidate) -> bool {
    c.include
        .iter()
        .all(|col| keys.iter().any(|k| k.text == col.as_str()) || ix.include_columns.contains(col))
}

/// The index's keys: parsed from its definition, else its key columns, ascending.
fn index_keys(ix: &Index) -> Vec<IndexKey> {
    let parsed = parse_definition(&ix.definition).map(|stmt| {
        stmt.index_params
            .iter()
            .filter_map(|p| match p.node.as_ref() {
                Some(NodeEnum::IndexElem(e)) => Some(IndexKey {
                    text: match e.expr.as_deref() {
                        Some(expr) => deparse_expression(expr).unwrap_or_default(),
                        None => e.name.clone(),
                    },
                    desc: e.ordering() == pg_query::protobuf::SortByDir::SortbyDesc,
                    opclass: e.opclass.iter().rev().find_map(|n| match n.node.as_ref() {
                        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                        _ => None,
                    }),
                }),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    match parsed {
        Some(keys) if !keys.is_empty() => keys,
        _ => ix
            .key_columns
            .iter()
            .map(|k| IndexKey {
                text: k.to_string(),
                desc: false,
                opclass: None,
            })
            .collect(),
    }
}

fn parse_definition(definition: &str) -> Option<Box<pg_query::protobuf::IndexStmt>> {
    if definition.is_empty() {
        return None;
    }
    let parsed = pg_query::parse(definition).ok()?;
    let stmt = parsed.protobuf.stmts.into_iter().next()?.stmt?;
    match stmt.node? {
        NodeEnum::IndexStmt(s) => Some(s),
        _ => None,
    }
}

/// A condition's text as pg_query deparses it (so `(status = 'x')` and `"status" = 'x'`
/// compare equal). The text is only parsed, never run.
fn condition_text(condition: &str) -> Option<String> {
    let parsed = pg_query::parse(&format!("SELECT 1 WHERE {condition}")).ok()?;
    let stmt = parsed.protobuf.stmts.into_iter().next()?.stmt?;
    let NodeEnum::SelectStmt(select) = stmt.node? else {
        return None;
    };
    let condition: Node = *select.where_clause?;
    deparse_expression(&condition)
}
