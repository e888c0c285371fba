//! Expression helpers for [`super`]: walking pg_query's expression nodes, the SQL text of
//! constants and index expressions (deparsed by pg_query, so names are quoted as PostgreSQL
//! needs them), and the function checks (volatile, aggregate).
//!
//! Only expression nodes are walked here: a subquery (SubLink) is handed back to the caller,
//! which analyses it with its own scope.

use pg_query::protobuf::{self as pb, a_const};
use pg_query::{Node, NodeEnum};

/// Functions whose result changes from row to row: a condition on them is not searchable.
const VOLATILE: &[&str] = &[
    "random",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v4",
    "setseed",
    "random_normal",
];

/// Aggregates by name (a key over one of them is not an index expression).
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "jsonb_object_agg",
];

/// The direct sub-expressions of an expression node (a SubLink's test expression, not its
/// subquery).
pub(super) fn children(node: &NodeEnum) -> Vec<&Node> {
    let mut out: Vec<&Node> = Vec::new();
    match node {
        NodeEnum::AExpr(e) => out.extend(e.lexpr.as_deref().into_iter().chain(e.rexpr.as_deref())),
        NodeEnum::BoolExpr(e) => out.extend(&e.args),
        NodeEnum::BooleanTest(e) => out.extend(e.arg.as_deref()),
        NodeEnum::NullTest(e) => out.extend(e.arg.as_deref()),
        NodeEnum::CoalesceExpr(e) => out.extend(&e.args),
        NodeEnum::MinMaxExpr(e) => out.extend(&e.args),
        NodeEnum::FuncCall(f) => {
            out.extend(&f.args);
            out.extend(f.agg_filter.as_deref());
        }
        NodeEnum::CaseExpr(c) => {
            out.extend(c.arg.as_deref());
            out.extend(&c.args);
            out.extend(c.defresult.as_deref());
        }
        NodeEnum::CaseWhen(w) => {
            out.extend(w.expr.as_deref().into_iter().chain(w.result.as_deref()))
        }
        NodeEnum::TypeCast(t) => out.extend(t.arg.as_deref()),
        NodeEnum::List(l) => out.extend(&l.items),
        NodeEnum::RowExpr(r) => out.extend(&r.args),
        NodeEnum::AArrayExpr(a) => out.extend(&a.elements),
        NodeEnum::ResTarget(r) => out.extend(r.val.as_deref()),
        NodeEnum::SortBy(s) => out.extend(s.node.as_deref()),
        NodeEnum::AIndirection(i) => out.extend(i.arg.as_deref()),
        NodeEnum::CollateClause(c) => out.extend(c.arg.as_deref()),
        NodeEnum::NamedArgExpr(n) => out.extend(n.arg.as_deref()),
        NodeEnum::SubLink(s) => out.extend(s.testexpr.as_deref()),
        _ => {}
    }
    out
}

/// Calls `f` on `node` and every sub-expression below it; `f` returns whether to descend.
pub(super) fn visit<'a>(node: &'a Node, f: &mut dyn FnMut(&'a NodeEnum) -> bool) {
    let Some(inner) = node.node.as_ref() else {
        return;
    };
    if f(inner) {
        for child in children(inner) {
            visit(child, f);
        }
    }
}

/// The mutable twin of [`children`], for the node kinds an index expression is made of.
fn children_mut(node: &mut NodeEnum) -> Vec<&mut Node> {
    let mut out: Vec<&mut Node> = Vec::new();
    match node {
        NodeEnum::AExpr(e) => out.extend(
            e.lexpr
                .as_deref_mut()
                .into_iter()
                .chain(e.rexpr.as_deref_mut()),
        ),
        NodeEnum::BoolExpr(e) => out.extend(&mut e.args),
        NodeEnum::CoalesceExpr(e) => out.extend(&mut e.args),
        NodeEnum::MinMaxExpr(e) => out.extend(&mut e.args),
        NodeEnum::FuncCall(f) => out.extend(&mut f.args),
        NodeEnum::CaseExpr(c) => {
            out.extend(c.arg.as_deref_mut());
            out.extend(&mut c.args);
            out.extend(c.defresult.as_deref_mut());
        }
        NodeEnum::CaseWhen(w) => out.extend(
            w.expr
                .as_deref_mut()
                .into_iter()
                .chain(w.result.as_deref_mut()),
        ),
        NodeEnum::TypeCast(t) => out.extend(t.arg.as_deref_mut()),
        NodeEnum::List(l) => out.extend(&mut l.items),
        NodeEnum::RowExpr(r) => out.extend(&mut r.args),
        NodeEnum::AArrayExpr(a) => out.extend(&mut a.elements),
        NodeEnum::AIndirection(i) => out.extend(i.arg.as_deref_mut()),
        NodeEnum::CollateClause(c) => out.extend(c.arg.as_deref_mut()),
        NodeEnum::NamedArgExpr(n) => out.extend(n.arg.as_deref_mut()),
        _ => {}
    }
    out
}

/// Drops the table qualifier of every column reference (`u.email` -> `email`): an index
/// expression names its table's columns bare.
fn strip_qualifiers(node: &mut Node) {
    let Some(inner) = node.node.as_mut() else {
        return;
    };
    if let NodeEnum::ColumnRef(c) = inner {
        if c.fields.len() > 1 {
            c.fields.drain(..c.fields.len() - 1);
        }
        return;
    }
    for child in children_mut(inner) {
        strip_qualifiers(child);
    }
}

/// The SQL text of an expression, as pg_query deparses it (`SELECT <expr>` cut).
pub(super) fn deparse(node: &Node) -> Option<String> {
    let target = pb::ResTarget {
        val: Some(Box::new(node.clone())),
        ..Default::default()
    };
    let select = pb::SelectStmt {
        target_list: vec![Node {
            node: Some(NodeEnum::ResTarget(Box::new(target))),
        }],
        op: pb::SetOperation::SetopNone as i32,
        limit_option: pb::LimitOption::Default as i32,
        ..Default::default()
    };
    let sql = NodeEnum::SelectStmt(Box::new(select)).deparse().ok()?;
    sql.strip_prefix("SELECT ").map(str::to_string)
}

/// The text of an index expression over one table: qualifiers dropped, then deparsed.
pub(super) fn index_expression(node: &Node) -> Option<String> {
    let mut bare = node.clone();
    strip_qualifiers(&mut bare);
    deparse(&bare)
}

/// The literal behind a constant, through casts (`'2024-01-01'::date`), when it is one.
fn literal(node: &Node) -> Option<&pb::AConst> {
    match node.node.as_ref()? {
        NodeEnum::AConst(c) => Some(c),
        NodeEnum::TypeCast(t) => literal(t.arg.as_deref()?),
        _ => None,
    }
}

/// A constant's SQL text (`'pending'`, `42`, `true`, `'2024-01-01'::date`); None for
/// anything else (a parameter, an expression).
pub(super) fn constant(node: &Node) -> Option<String> {
    let c = literal(node)?;
    if c.isnull {
        return None;
    }
    deparse(node)
}

/// The number of a `$n` parameter, through casts (`$1::int`), when the node is one.
pub(super) fn param_number(node: &Node) -> Option<u32> {
    match node.node.as_ref()? {
        NodeEnum::ParamRef(p) => u32::try_from(p.number).ok(),
        NodeEnum::TypeCast(t) => param_number(t.arg.as_deref()?),
        _ => None,
    }
}

/// The string value of a string constant (a LIKE pattern).
pub(super) fn string_value(node: &Node) -> Option<&str> {
    match &literal(node)?.val {
        Some(a_const::Val::Sval(s)) => Some(&s.sval),
        _ => None,
    }
}

/// Whether the node is a parameter (`$1`, `$1::text`).
pub(super) fn is_parameter(node: &Node) -> bool {
    match node.node.as_ref() {
        Some(NodeEnum::ParamRef(_)) => true,
        Some(NodeEnum::TypeCast(c)) => c.arg.as_deref().is_some_and(is_parameter),
        _ => false,
    }
}

/// The integer value of an integer constant (LIMIT, ORDER BY 1).
pub(super) fn integer_value(node: &Node) -> Option<i64> {
    match &literal(node)?.val {
        Some(a_const::Val::Ival(i)) => Some(i64::from(i.ival)),
        Some(a_const::Val::Fval(f)) => f.fval.parse().ok(),
        _ => None,
    }
}

/// Whether the constant is SQL NULL (`LIMIT NULL`, `LIMIT ALL`).
pub(super) fn is_null_constant(node: &Node) -> bool {
    literal(node).is_some_and(|c| c.isnull)
}

/// The last part of a qualified name list (`pg_catalog.lower` -> `lower`, `=` -> `=`).
pub(super) fn last_name(names: &[Node]) -> &str {
    names
        .iter()
        .rev()
        .find_map(|n| match n.node.as_ref()? {
            NodeEnum::String(s) => Some(s.sval.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

pub(super) fn is_volatile(f: &pb::FuncCall) -> bool {
    VOLATILE.contains(&last_name(&f.funcname))
}

pub(super) fn is_aggregate(f: &pb::FuncCall) -> bool {
    f.agg_star || f.over.is_some() || AGGREGATES.contains(&last_name(&f.funcname))
}

/// The fields of a column reference: the names, and whether it ends in `*`.
pub(super) fn column_fields(c: &pb::ColumnRef) -> (Vec<&str>, bool) {
    let mut names = Vec::new();
    let mut star = false;
    for f in &c.fields {
        match f.node.as_ref() {
            Some(NodeEnum::String(s)) => names.push(s.sval.as_str()),
            Some(NodeEnum::AStar(_)) => star = true,
            _ => {}
        }
    }
    (names, star)
}

/// Whether a LIKE pattern is a prefix search (`'abc%'`): no wildcard before the end.
pub(super) fn like_prefix(pattern: &str) -> bool {
    match pattern.find(['%', '_', '\\']) {
        Some(0) | None => false,
        Some(i) => &pattern[i..] == "%",
    }
}
