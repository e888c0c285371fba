//! Column references for [`super`]: resolving them in the query levels, what an expression
//! refers to, the select list, GROUP BY and ORDER BY.

use pg_query::protobuf::{self as pb};
use pg_query::{Node, NodeEnum};

use super::expr;
use super::{Out, OutCol, RelKind, Res, Scan, Term, Walker};
use crate::indexes::model::{KeyExpr, SortKey};
use crate::snapshot::Name;

impl Walker<'_> {
    /// Resolves a column reference (innermost query level first) and records the read.
    pub(super) fn resolve(&mut self, c: &pb::ColumnRef) -> Res {
        let (names, star) = expr::column_fields(c);
        let Some((col, qual)) = names.split_last() else {
            return Res::Unresolved;
        };
        if star {
            return Res::Unresolved;
        }
        let res = self.lookup(qual, col);
        if let Res::Col(a, name) = &res {
            self.add_read(*a, name.clone());
        }
        res
    }

    fn lookup(&self, qual: &[&str], col: &str) -> Res {
        for scope in self.scopes.iter().rev() {
            let matching: Vec<&RelKind> = scope
                .iter()
                .filter(|r| match qual {
                    [] => self.has_column(&r.kind, col),
                    [name] => r.name == *name,
                    [.., schema, name] => r.name == *name && r.schema.as_deref() == Some(*schema),
                })
                .map(|r| &r.kind)
                .collect();
            match matching.as_slice() {
                [] => continue,
                [kind] => return self.column_of(kind, col),
                _ => return Res::Unresolved,
            }
        }
        Res::Unresolved
    }

    fn has_column(&self, kind: &RelKind, col: &str) -> bool {
        match kind {
            RelKind::Table(a) => self.tables[*a].column(col).is_some(),
            RelKind::Derived(Some(cols)) => cols.iter().any(|c| c.name == col),
            RelKind::Derived(None) => false,
        }
    }

    fn column_of(&self, kind: &RelKind, col: &str) -> Res {
        match kind {
            RelKind::Table(a) if self.tables[*a].column(col).is_some() => {
                Res::Col(*a, Name::from(col))
            }
            RelKind::Table(_) => Res::Unresolved,
            RelKind::Derived(Some(cols)) => match cols.iter().find(|c| c.name == col) {
                Some(OutCol {
                    source: Some((a, name)),
                    ..
                }) => Res::Col(*a, name.clone()),
                Some(_) => Res::Foreign,
                None => Res::Unresolved,
            },
            RelKind::Derived(None) => Res::Foreign,
        }
    }

    pub(super) fn add_read(&mut self, access: usize, col: Name) {
        let reads = &mut self.shape.accesses[access].reads;
        if !reads.contains(&col) {
            reads.push(col);
        }
    }

    pub(super) fn join_key(&mut self, access: usize, col: Name) {
        self.add_read(access, col.clone());
        let keys = &mut self.shape.accesses[access].join_keys;
        if !keys.contains(&col) {
            keys.push(col);
        }
    }

    /// Resolves every column an expression reads and walks its subqueries.
    pub(super) fn scan(&mut self, node: &Node) -> Scan {
        let mut scan = Scan::default();
        expr::visit(node, &mut |n| {
            match n {
                NodeEnum::ColumnRef(c) => {
                    self.scan_column(c, &mut scan);
                    return false;
                }
                NodeEnum::SubLink(s) => {
                    scan.sublink = true;
                    if let Some(q) = s.subselect.as_deref() {
                        self.nested(q);
                    }
                }
                NodeEnum::FuncCall(f) => {
                    scan.volatile |= expr::is_volatile(f);
                    scan.aggregate |= expr::is_aggregate(f);
                }
                NodeEnum::ParamRef(_) | NodeEnum::RowExpr(_) => scan.not_indexable = true,
                _ => {}
            }
            true
        });
        scan
    }

    fn scan_column(&mut self, c: &pb::ColumnRef, scan: &mut Scan) {
        if expr::column_fields(c).1 {
            self.star(c);
            return;
        }
        match self.resolve(c) {
            Res::Col(a, name) => {
                if !scan.accesses.contains(&a) {
                    scan.accesses.push(a);
                }
                if !scan.columns.contains(&name) {
                    scan.columns.push(name);
                }
            }
            Res::Foreign => scan.foreign = true,
            Res::Unresolved => scan.unresolved = true,
        }
    }

    pub(super) fn scan_all(&mut self, nodes: &[Node]) {
        for n in nodes {
            self.scan(n);
        }
    }

    /// `*` or `t.*`: every column of the relations it covers is read. Returns the output
    /// columns it stands for (None when a relation's columns are unknown).
    fn star(&mut self, c: &pb::ColumnRef) -> Out {
        let (names, _) = expr::column_fields(c);
        let rels: Vec<RelKind> = self
            .scopes
            .last()
            .map(|scope| {
                scope
                    .iter()
                    .filter(|r| names.last().is_none_or(|n| r.name == *n))
                    .map(|r| r.kind.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Some(Vec::new());
        for kind in rels {
            let cols = match kind {
                RelKind::Table(a) => {
                    self.shape.accesses[a].reads_all = true;
                    Some(self.table_columns(a))
                }
                RelKind::Derived(cols) => cols,
            };
            out = out.zip(cols).map(|(mut all, cols)| {
                all.extend(cols);
                all
            });
        }
        out
    }

    /// Every column of an access's table, as output columns of a `*`.
    fn table_columns(&self, a: usize) -> Vec<OutCol> {
        self.tables[a]
            .columns
            .iter()
            .map(|col| OutCol {
                name: col.name.to_string(),
                source: Some((a, col.name.clone())),
            })
            .collect()
    }

    /// What one side of a comparison is.
    pub(super) fn term(&mut self, node: &Node) -> Term {
        if let Some(NodeEnum::ColumnRef(c)) = node.node.as_ref() {
            if !expr::column_fields(c).1 {
                return match self.resolve(c) {
                    Res::Col(a, name) => Term::Key(a, KeyExpr::column(name)),
                    Res::Foreign => Term::Mixed,
                    Res::Unresolved => Term::Unresolved,
                };
            }
        }
        let scan = self.scan(node);
        if scan.volatile {
            return Term::Volatile;
        }
        if scan.unresolved {
            return Term::Unresolved;
        }
        match (scan.accesses.as_slice(), scan.foreign) {
            ([], false) => Term::Value(expr::constant(node)),
            ([a], false) if !scan.aggregate && !scan.sublink && !scan.not_indexable => {
                match expr::index_expression(node) {
                    Some(sql) => {
                        let mut columns = scan.columns;
                        columns.sort();
                        Term::Key(*a, KeyExpr::Expression { sql, columns })
                    }
                    None => Term::Mixed,
                }
            }
            _ => Term::Mixed,
        }
    }

    /// The select list: reads, subqueries, and the output columns it defines.
    pub(super) fn target_list(&mut self, targets: &[Node]) -> Out {
        let mut out = Some(Vec::new());
        for t in targets {
            let Some(NodeEnum::ResTarget(rt)) = t.node.as_ref() else {
                continue;
            };
            let Some(val) = rt.val.as_deref() else {
                continue;
            };
            let cols = self.output_columns(rt, val);
            out = out.zip(cols).map(|(mut all, cols)| {
                all.extend(cols);
                all
            });
        }
        out
    }

    /// One select-list entry: its output columns (several for `*`; None when unknown).
    fn output_columns(&mut self, rt: &pb::ResTarget, val: &Node) -> Out {
        if let Some(NodeEnum::ColumnRef(c)) = val.node.as_ref() {
            let (names, star) = expr::column_fields(c);
            if star {
                return self.star(c);
            }
            let source = match self.resolve(c) {
                Res::Col(a, name) => Some((a, name)),
                _ => None,
            };
            let name = if rt.name.is_empty() {
                names.last().map(|n| n.to_string()).unwrap_or_default()
            } else {
                rt.name.clone()
            };
            return Some(vec![OutCol { name, source }]);
        }
        self.scan(val);
        Some(vec![OutCol {
            name: rt.name.clone(),
            source: None,
        }])
    }

    /// The expression an ORDER BY / GROUP BY item stands for: an output column's
    /// expression when it names one (`ORDER BY 2`, `ORDER BY total_alias`).
    fn output_expression<'n>(&self, node: &'n Node, targets: &'n [Node]) -> &'n Node {
        let by_position = expr::integer_value(node)
            .and_then(|i| usize::try_from(i).ok()?.checked_sub(1))
            .and_then(|i| targets.get(i));
        let by_name = match node.node.as_ref() {
            Some(NodeEnum::ColumnRef(c)) => match expr::column_fields(c) {
                (names, false) if names.len() == 1 => targets.iter().find(|t| {
                    matches!(t.node.as_ref(), Some(NodeEnum::ResTarget(rt)) if rt.name == names[0])
                }),
                _ => None,
            },
            _ => None,
        };
        by_position
            .or(by_name)
            .and_then(|t| match t.node.as_ref() {
                Some(NodeEnum::ResTarget(rt)) => rt.val.as_deref(),
                _ => None,
            })
            .unwrap_or(node)
    }

    pub(super) fn group_by(&mut self, items: &[Node], targets: &[Node]) {
        let mut keys = Vec::new();
        for item in items {
            let node = self.output_expression(item, targets);
            keys.push(self.term(node));
        }
        if let Some((a, keys)) = one_access(keys) {
            self.shape.accesses[a].group_by = keys;
        }
    }

    pub(super) fn order_by(&mut self, items: &[Node], targets: &[Node]) {
        let mut keys = Vec::new();
        let mut terms = Vec::new();
        for item in items {
            let Some(NodeEnum::SortBy(sb)) = item.node.as_ref() else {
                continue;
            };
            let Some(node) = sb.node.as_deref() else {
                continue;
            };
            let node = self.output_expression(node, targets);
            terms.push(self.term(node));
            keys.push(sort_direction(sb));
        }
        if let Some((a, exprs)) = one_access(terms) {
            let sort = exprs
                .into_iter()
                .zip(keys)
                .map(|(key, (desc, nulls_first))| SortKey {
                    key,
                    desc,
                    nulls_first,
                })
                .collect();
            self.shape.accesses[a].order_by = sort;
        }
    }
}

/// (desc, nulls_first when it differs from the direction's default).
fn sort_direction(sb: &pb::SortBy) -> (bool, Option<bool>) {
    let desc = sb.sortby_dir() == pb::SortByDir::SortbyDesc;
    let nulls = match sb.sortby_nulls() {
        pb::SortByNulls::SortbyNullsFirst if !desc => Some(true),
        pb::SortByNulls::SortbyNullsLast if desc => Some(false),
        _ => None,
    };
    (desc, nulls)
}

/// The keys when every term is a key of the same access.
fn one_access(terms: Vec<Term>) -> Option<(usize, Vec<KeyExpr>)> {
    let mut access = None;
    let mut keys = Vec::new();
    for t in terms {
        let Term::Key(a, k) = t else {
            return None;
        };
        if access.is_some_and(|x| x != a) {
            return None;
        }
        access = Some(a);
        keys.push(k);
    }
    access.map(|a| (a, keys))
}
