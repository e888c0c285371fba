//! What a statement does to each table it reads, from pg_query's parse tree (pure).
//!
//! [`shape`] walks the protobuf tree of every statement of the text, resolving each table
//! reference against the [`Catalog`] (aliases, joins, subqueries in FROM, CTEs, sublinks,
//! UNION branches, UPDATE/DELETE, INSERT .. SELECT) and recording per reference the
//! conditions an index could search ([`Predicate`]s, OR groups, join keys), ORDER BY,
//! GROUP BY, LIMIT and the columns read. It never looks at the SQL text itself.
//!
//! Decisions worth knowing:
//! - `LIMIT $1` (or any LIMIT that is not a constant) is recorded as
//!   [`PARAMETER_LIMIT`] (-1): a limit of unknown size, which still makes ORDER BY ... LIMIT
//!   a top-N. `LIMIT ALL`/`LIMIT NULL` is no limit.
//! - An unqualified column resolves to the one relation of the innermost query level that
//!   has it (then the outer levels, as PostgreSQL does); ambiguous or unknown, the
//!   condition is skipped. A `*` in a subquery or CTE stands for its relations' columns;
//!   over a relation whose columns are unknown (a function, an unknown table) the
//!   subquery's columns are unknown and never take an unqualified name.
//! - A plain column of a simple subquery or CTE (no GROUP BY, DISTINCT, LIMIT or set
//!   operation) stands for the table column it selects, so conditions on it reach the
//!   table's access.
//! - `Predicate.constant` is the literal's SQL text for `=`, ranges, LIKE and booleans
//!   (`'pending'`, `42`, `true`); None for a parameter, an expression and an IN list.
//! - `Shape.params` says what each `$n` is compared with (a key of a table, as equality,
//!   IN element, array of `= ANY`, lower or upper bound, BETWEEN bound, LIKE pattern) or
//!   whether it is a LIMIT/OFFSET; a parameter anywhere else (select list, inside an
//!   expression) has no entry. The timing of `--apply` picks representative values from it.
//! - `a = 1 OR a = 2` on one key becomes `IN`; other ORs whose alternatives all search one
//!   table become that table's `or_groups` (the first such OR of a table; later ones are
//!   only read).

mod expr;
#[cfg(test)]
mod tests;

use pg_query::protobuf::{self as pb};
use pg_query::{Node, NodeEnum};

use super::model::{
    Catalog, KeyExpr, ParamRole, ParamUse, Predicate, Reason, Shape, Table, TableAccess,
};
use crate::snapshot::Name;

/// The `limit` of an access whose LIMIT is a parameter or an expression (`LIMIT $1`).
pub const PARAMETER_LIMIT: i64 = -1;

/// Analyses one statement (or several, separated by `;`) against the catalog.
///
/// Errors: [`Reason::NotParseable`] when pg_query refuses it, [`Reason::NotIndexable`] for
/// DDL, utility statements and statements that read no table, [`Reason::UnknownTable`]
/// when no table it names is in the catalog.
pub fn shape(sql: &str, catalog: &Catalog) -> Result<Shape, Reason> {
    let parsed = pg_query::parse(sql).map_err(|e| Reason::NotParseable {
        error: e.to_string(),
    })?;
    let mut walker = Walker::new(catalog);
    let mut indexable = false;
    for raw in &parsed.protobuf.stmts {
        if let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
            indexable |= walker.statement(node);
        }
    }
    if !indexable {
        return Err(Reason::NotIndexable);
    }
    walker.finish()
}

/// The output columns of a subquery or CTE; None when unknown (a `*` in its select list).
type Out = Option<Vec<OutCol>>;

#[derive(Debug, Clone)]
struct OutCol {
    name: String,
    /// The table column it is, when it is a plain column of a simple query.
    source: Option<(usize, Name)>,
}

/// A relation visible in a query level: a catalog table (its access) or a derived one.
#[derive(Debug, Clone)]
struct Rel {
    /// The name it is referred to by (alias, or the table's name).
    name: String,
    schema: Option<String>,
    kind: RelKind,
}

#[derive(Debug, Clone)]
enum RelKind {
    Table(usize),
    Derived(Out),
}

#[derive(Debug, Clone)]
struct Cte {
    name: String,
    out: Out,
}

/// What a column reference resolved to.
enum Res {
    /// A column of a catalog table's access.
    Col(usize, Name),
    /// A column of a derived relation that is no table column.
    Foreign,
    /// Ambiguous or unknown.
    Unresolved,
}

/// One side of a comparison.
enum Term {
    /// A column or an expression over the columns of one access.
    Key(usize, KeyExpr),
    /// No column of any query level: a constant (its text), a parameter, a subquery.
    Value(Option<String>),
    Volatile,
    /// Columns of several relations, or of a derived one.
    Mixed,
    Unresolved,
}

/// What one ANDed condition is.
enum Atom {
    Pred(usize, Predicate),
    /// Columns equated across relations: a join key on each side listed.
    Join(Vec<(usize, Name)>),
    Nothing,
}

/// What an expression refers to.
#[derive(Default)]
struct Scan {
    accesses: Vec<usize>,
    columns: Vec<Name>,
    foreign: bool,
    unresolved: bool,
    volatile: bool,
    aggregate: bool,
    sublink: bool,
    /// A `$n` parameter or a row constructor: not part of an index expression.
    not_indexable: bool,
}

struct Walker<'c> {
    catalog: &'c Catalog,
    tables: Vec<&'c Table>,
    shape: Shape,
    /// Query levels, innermost last.
    scopes: Vec<Vec<Rel>>,
    /// WITH lists, innermost last.
    ctes: Vec<Vec<Cte>>,
}

impl<'c> Walker<'c> {
    fn new(catalog: &'c Catalog) -> Self {
        Walker {
            catalog,
            tables: Vec::new(),
            shape: Shape {
                read_only: true,
                ..Shape::default()
            },
            scopes: Vec::new(),
            ctes: Vec::new(),
        }
    }

    fn finish(mut self) -> Result<Shape, Reason> {
        if self.shape.accesses.is_empty() {
            return Err(match self.shape.unknown_tables.first() {
                Some(t) => Reason::UnknownTable { table: t.clone() },
                None => Reason::NotIndexable,
            });
        }
        for a in &mut self.shape.accesses {
            if a.reads_all {
                a.reads.clear();
            }
        }
        Ok(self.shape)
    }

    /// Walks one top-level (or data-modifying CTE) statement; false for what no index
    /// helps.
    fn statement(&mut self, node: &NodeEnum) -> bool {
        match node {
            NodeEnum::SelectStmt(s) => {
                self.select(s);
                true
            }
            NodeEnum::InsertStmt(i) => {
                self.shape.read_only = false;
                let pushed = self.with_clause(i.with_clause.as_ref());
                if let Some(s) = i.select_stmt.as_deref() {
                    self.nested(s);
                }
                self.pop_with(pushed);
                true
            }
            NodeEnum::UpdateStmt(u) => {
                self.shape.read_only = false;
                let pushed = self.with_clause(u.with_clause.as_ref());
                self.modify(
                    u.relation.as_ref(),
                    &u.from_clause,
                    u.where_clause.as_deref(),
                );
                self.scan_all(&u.target_list);
                self.scopes.pop();
                self.pop_with(pushed);
                true
            }
            NodeEnum::DeleteStmt(d) => {
                self.shape.read_only = false;
                let pushed = self.with_clause(d.with_clause.as_ref());
                self.modify(
                    d.relation.as_ref(),
                    &d.using_clause,
                    d.where_clause.as_deref(),
                );
                self.scopes.pop();
                self.pop_with(pushed);
                true
            }
            _ => false,
        }
    }

    /// The shared part of UPDATE and DELETE: its table, FROM/USING and WHERE, in a query
    /// level the caller pops.
    fn modify(&mut self, relation: Option<&pb::RangeVar>, from: &[Node], filter: Option<&Node>) {
        self.scopes.push(Vec::new());
        if let Some(rv) = relation {
            self.range_var(rv);
        }
        for item in from {
            self.table_ref(item);
        }
        if let Some(w) = filter {
            self.condition(w, &|_| true);
        }
    }

    fn pop_with(&mut self, pushed: bool) {
        if pushed {
            self.ctes.pop();
        }
    }

    /// A subquery (of FROM, a sublink, INSERT, a CTE): its output columns.
    fn nested(&mut self, node: &Node) -> Out {
        match node.node.as_ref()? {
            NodeEnum::SelectStmt(s) => self.select(s),
            other => {
                self.statement(other);
                None
            }
        }
    }

    fn select(&mut self, s: &pb::SelectStmt) -> Out {
        if !s.locking_clause.is_empty() {
            self.shape.read_only = false;
        }
        let pushed = self.with_clause(s.with_clause.as_ref());
        self.limit_params(s);
        let out = if s.op() != pb::SetOperation::SetopNone && s.op() != pb::SetOperation::Undefined
        {
            let left = s.larg.as_deref().and_then(|l| self.select(l));
            if let Some(r) = s.rarg.as_deref() {
                self.select(r);
            }
            left.map(|cols| {
                cols.into_iter()
                    .map(|c| OutCol { source: None, ..c })
                    .collect()
            })
        } else {
            self.simple_select(s)
        };
        self.pop_with(pushed);
        out
    }

    /// `LIMIT $n` / `OFFSET $n` (FETCH FIRST $n ROWS too): recorded as parameter uses.
    fn limit_params(&mut self, s: &pb::SelectStmt) {
        let uses = [
            (s.limit_count.as_deref(), ParamRole::Limit),
            (s.limit_offset.as_deref(), ParamRole::Offset),
        ];
        for (node, role) in uses {
            if let Some(number) = node.and_then(expr::param_number) {
                self.shape.params.push(ParamUse {
                    number,
                    role,
                    key: None,
                });
            }
        }
    }

    /// Pushes a WITH list's CTEs (walking each body); true when something was pushed.
    fn with_clause(&mut self, with: Option<&pb::WithClause>) -> bool {
        let Some(w) = with else {
            return false;
        };
        self.ctes.push(Vec::new());
        for node in &w.ctes {
            if let Some(NodeEnum::CommonTableExpr(cte)) = node.node.as_ref() {
                self.cte(cte, w.recursive);
            }
        }
        true
    }

    fn cte(&mut self, cte: &pb::CommonTableExpr, recursive: bool) {
        let list = self.ctes.len() - 1;
        if recursive {
            // A recursive CTE's body may name itself.
            self.ctes[list].push(Cte {
                name: cte.ctename.clone(),
                out: None,
            });
        }
        let out = cte
            .ctequery
            .as_deref()
            .and_then(|q| self.nested(q))
            .map(|cols| rename(cols, &cte.aliascolnames));
        let entry = Cte {
            name: cte.ctename.clone(),
            out,
        };
        match self.ctes[list].iter_mut().find(|c| c.name == entry.name) {
            Some(existing) => *existing = entry,
            None => self.ctes[list].push(entry),
        }
    }

    fn simple_select(&mut self, s: &pb::SelectStmt) -> Out {
        self.scopes.push(Vec::new());
        for item in &s.from_clause {
            self.table_ref(item);
        }
        for row in &s.values_lists {
            self.scan(row);
        }
        if let Some(w) = s.where_clause.as_deref() {
            self.condition(w, &|_| true);
        }
        let mut out = self.target_list(&s.target_list);
        self.group_by(&s.group_clause, &s.target_list);
        if let Some(h) = s.having_clause.as_deref() {
            self.scan(h);
        }
        self.order_by(&s.sort_clause, &s.target_list);
        let limit = s.limit_count.as_deref().and_then(limit_value);
        let own = self.own_accesses();
        for a in &own {
            self.shape.accesses[*a].limit = limit;
        }
        let simple = s.group_clause.is_empty() && s.distinct_clause.is_empty() && limit.is_none();
        if !simple {
            out = out.map(|cols| {
                cols.into_iter()
                    .map(|c| OutCol { source: None, ..c })
                    .collect()
            });
        }
        self.scopes.pop();
        out
    }

    /// The accesses of tables named directly in the innermost query level.
    fn own_accesses(&self) -> Vec<usize> {
        self.scopes
            .last()
            .map(|rels| {
                rels.iter()
                    .filter_map(|r| match r.kind {
                        RelKind::Table(a) => Some(a),
                        RelKind::Derived(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn add_rel(&mut self, rel: Rel) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(rel);
        }
    }

    fn table_ref(&mut self, node: &Node) {
        match node.node.as_ref() {
            Some(NodeEnum::RangeVar(rv)) => self.range_var(rv),
            Some(NodeEnum::JoinExpr(j)) => self.join(j),
            Some(NodeEnum::RangeSubselect(sub)) => {
                let out = sub.subquery.as_deref().and_then(|q| self.nested(q));
                let alias = sub.alias.as_ref();
                let out = match alias {
                    Some(a) => out.map(|cols| rename(cols, &a.colnames)),
                    None => out,
                };
                self.add_rel(Rel {
                    name: alias.map(|a| a.aliasname.clone()).unwrap_or_default(),
                    schema: None,
                    kind: RelKind::Derived(out),
                });
            }
            Some(NodeEnum::RangeFunction(f)) => {
                let name = f.alias.as_ref().map(|a| a.aliasname.clone());
                self.add_rel(Rel {
                    name: name.unwrap_or_default(),
                    schema: None,
                    kind: RelKind::Derived(None),
                });
            }
            _ => {}
        }
    }

    fn range_var(&mut self, rv: &pb::RangeVar) {
        let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
        let schema = Some(rv.schemaname.clone()).filter(|s| !s.is_empty());
        let visible = alias.clone().unwrap_or_else(|| rv.relname.clone());
        if schema.is_none() {
            if let Some(out) = self.cte_named(&rv.relname) {
                let out = match rv.alias.as_ref() {
                    Some(a) => out.map(|cols| rename(cols, &a.colnames)),
                    None => out,
                };
                return self.add_rel(Rel {
                    name: visible,
                    schema: None,
                    kind: RelKind::Derived(out),
                });
            }
        }
        let kind = match self.catalog.resolve(schema.as_deref(), &rv.relname) {
            Some(table) => {
                self.tables.push(table);
                self.shape.accesses.push(TableAccess {
                    schema: table.schema.clone(),
                    table: table.name.clone(),
                    alias: alias.map(Name::from),
                    ..TableAccess::default()
                });
                RelKind::Table(self.shape.accesses.len() - 1)
            }
            None => {
                let written = match &schema {
                    Some(s) => format!("{s}.{}", rv.relname),
                    None => rv.relname.clone(),
                };
                if !self.shape.unknown_tables.contains(&written) {
                    self.shape.unknown_tables.push(written);
                }
                RelKind::Derived(None)
            }
        };
        self.add_rel(Rel {
            name: visible,
            schema,
            kind,
        });
    }

    /// The CTE a bare name refers to (innermost WITH first): Some(its output columns).
    fn cte_named(&self, name: &str) -> Option<Out> {
        self.ctes
            .iter()
            .rev()
            .find_map(|list| list.iter().find(|c| c.name == name))
            .map(|c| c.out.clone())
    }

    fn join(&mut self, j: &pb::JoinExpr) {
        let start = self.scope_len();
        if let Some(l) = j.larg.as_deref() {
            self.table_ref(l);
        }
        let mid = self.scope_len();
        if let Some(r) = j.rarg.as_deref() {
            self.table_ref(r);
        }
        let end = self.scope_len();
        self.using(&j.using_clause, start..mid, mid..end);
        let nullable = match j.jointype() {
            pb::JoinType::JoinLeft => Some(mid..end),
            pb::JoinType::JoinRight => Some(start..mid),
            _ => None,
        };
        let Some(quals) = j.quals.as_deref() else {
            return;
        };
        match nullable {
            None => self.condition(quals, &|_| true),
            Some(range) => {
                let keep = self.accesses_in(range);
                self.condition(quals, &|a| keep.contains(&a));
            }
        }
    }

    fn scope_len(&self) -> usize {
        self.scopes.last().map_or(0, Vec::len)
    }

    fn accesses_in(&self, range: std::ops::Range<usize>) -> Vec<usize> {
        let Some(scope) = self.scopes.last() else {
            return Vec::new();
        };
        scope[range]
            .iter()
            .filter_map(|r| match r.kind {
                RelKind::Table(a) => Some(a),
                RelKind::Derived(_) => None,
            })
            .collect()
    }

    /// `JOIN .. USING (col)`: a join key on each side that has the column.
    fn using(
        &mut self,
        names: &[Node],
        left: std::ops::Range<usize>,
        right: std::ops::Range<usize>,
    ) {
        for col in names.iter().filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
            _ => None,
        }) {
            for range in [left.clone(), right.clone()] {
                for a in self.accesses_in(range) {
                    if self.tables[a].column(col).is_some() {
                        self.join_key(a, Name::from(col));
                    }
                }
            }
        }
    }
}

/// The SQL text pg_query deparses an expression node to (names quoted as PostgreSQL needs
/// them): the common form the candidate stage compares index keys and predicates in.
pub(crate) fn deparse_expression(node: &Node) -> Option<String> {
    expr::deparse(node)
}

/// Applies a column alias list (`AS s(a, b)`) to output columns.
fn rename(mut cols: Vec<OutCol>, names: &[Node]) -> Vec<OutCol> {
    for (col, n) in cols.iter_mut().zip(names) {
        if let Some(NodeEnum::String(s)) = n.node.as_ref() {
            col.name = s.sval.clone();
        }
    }
    cols
}

/// LIMIT's value: the constant, [`PARAMETER_LIMIT`] for anything else, None for ALL/NULL.
fn limit_value(node: &Node) -> Option<i64> {
    if expr::is_null_constant(node) {
        return None;
    }
    Some(expr::integer_value(node).unwrap_or(PARAMETER_LIMIT))
}

mod columns;
mod conditions;
