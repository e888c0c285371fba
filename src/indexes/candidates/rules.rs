//! The candidate rules for one table access (see [`super`]).

use super::selectivity::{self, Partial};
use super::Proposal;
use crate::advise::thresholds::Thresholds;
use crate::indexes::model::{Candidate, KeyExpr, Predicate, SortKey, Table, TableAccess};
use crate::snapshot::Name;

/// An equality key with the share of rows it keeps (None: no statistics).
struct Eq {
    key: KeyExpr,
    share: Option<f64>,
}

/// What the conditions of one access (or one OR alternative) let an index search.
struct Search {
    /// Equality keys, most selective first.
    eqs: Vec<Eq>,
    /// The first range condition's key not already an equality.
    range: Option<KeyExpr>,
}

fn search(preds: &[Predicate], table: &Table, t: &Thresholds) -> Search {
    let mut eqs: Vec<Eq> = Vec::new();
    let mut range = None;
    for p in preds {
        if p.op.is_equality() && !eqs.iter().any(|e| e.key == p.key) {
            eqs.push(Eq {
                key: p.key.clone(),
                share: selectivity::share(p, table),
            });
        } else if p.op.is_range() && range.is_none() {
            range = Some(p.key.clone());
        }
    }
    if eqs.iter().all(|e| e.share.is_some()) {
        eqs.sort_by(|a, b| a.share.unwrap_or(1.0).total_cmp(&b.share.unwrap_or(1.0)));
    }
    eqs.truncate(t.index_max_key_columns.max(1));
    if range
        .as_ref()
        .is_some_and(|r| eqs.iter().any(|e| &e.key == r))
    {
        range = None;
    }
    Search { eqs, range }
}

fn asc(key: &KeyExpr) -> SortKey {
    SortKey {
        key: key.clone(),
        desc: false,
        nulls_first: None,
    }
}

/// What follows the equalities: the ORDER BY keys of a top-N, then the range, as separate
/// options (none when there is neither).
fn tails(access: &TableAccess, s: &Search) -> Vec<Vec<SortKey>> {
    let mut tails = Vec::new();
    if !access.order_by.is_empty() && access.limit.is_some() {
        let sort: Vec<SortKey> = access
            .order_by
            .iter()
            .filter(|k| !s.eqs.iter().any(|e| e.key == k.key))
            .cloned()
            .collect();
        tails.push(sort);
    }
    if let Some(r) = &s.range {
        let served = tails
            .first()
            .and_then(|t| t.first())
            .is_some_and(|k| &k.key == r);
        if !served {
            tails.push(vec![asc(r)]);
        }
    }
    if tails.is_empty() {
        tails.push(Vec::new());
    }
    tails
}

/// Every candidate for one access.
pub(super) fn proposals(access: &TableAccess, table: &Table, t: &Thresholds) -> Vec<Proposal> {
    let s = search(&access.predicates, table, t);
    let tails = tails(access, &s);
    let mut out = Vec::new();
    for tail in &tails {
        out.extend(plain(table, &s, tail));
    }
    out.extend(alone(table, &s, &tails));
    if let Some(main) = out.first() {
        out.extend(covering(access, table, main, t));
    }
    let partial = selectivity::partial(
        &access.predicates,
        table,
        t.index_partial_max_share,
        t.index_partial_max_distinct,
    );
    if let Some(partial) = partial {
        out.extend(partial_variant(table, &s, &tails[0], partial));
    }
    for col in &access.join_keys {
        out.extend(join_key(table, &s, col));
    }
    for alternative in &access.or_groups {
        let s = search(alternative, table, t);
        let tail: Vec<SortKey> = s.range.iter().map(asc).collect();
        out.extend(plain(table, &s, &tail));
    }
    out
}

fn candidate(table: &Table, keys: Vec<SortKey>) -> Candidate {
    Candidate::btree(table.schema.clone(), table.name.clone(), keys)
}

/// The equalities then the tail.
fn plain(table: &Table, s: &Search, tail: &[SortKey]) -> Option<Proposal> {
    let mut keys: Vec<SortKey> = s.eqs.iter().map(|e| asc(&e.key)).collect();
    keys.extend(tail.iter().cloned());
    if keys.is_empty() {
        return None;
    }
    let lone = match (s.eqs.as_slice(), tail.is_empty()) {
        ([e], true) => lone(e),
        _ => None,
    };
    Some(Proposal {
        candidate: candidate(table, keys),
        n_eq: s.eqs.len(),
        lone,
    })
}

fn lone(e: &Eq) -> Option<(String, f64)> {
    Some((e.key.as_column()?.to_string(), e.share?))
}

/// The most selective equality alone, when the main candidate has more keys.
fn alone(table: &Table, s: &Search, tails: &[Vec<SortKey>]) -> Option<Proposal> {
    let first = s.eqs.first()?;
    if s.eqs.len() == 1 && tails.iter().all(Vec::is_empty) {
        return None;
    }
    Some(Proposal {
        candidate: candidate(table, vec![asc(&first.key)]),
        n_eq: 1,
        lone: lone(first),
    })
}

/// The main candidate INCLUDing the other columns the statement reads, when they are few
/// and narrow.
fn covering(
    access: &TableAccess,
    table: &Table,
    main: &Proposal,
    t: &Thresholds,
) -> Option<Proposal> {
    if access.reads_all {
        return None;
    }
    let in_keys = |c: &Name| {
        main.candidate.keys.iter().any(|k| match &k.key {
            KeyExpr::Column { name } => name == c,
            KeyExpr::Expression { .. } => false,
        })
    };
    let include: Vec<Name> = access
        .reads
        .iter()
        .filter(|c| !in_keys(c))
        .cloned()
        .collect();
    let width: f64 = include
        .iter()
        .map(|c| {
            let stats = table.column(c).and_then(|col| col.stats.as_ref());
            stats.map_or(8.0, |s| f64::from(s.avg_width.max(1)))
        })
        .sum();
    let fits = !include.is_empty()
        && include.len() <= t.index_include_max_columns
        && width <= t.index_include_max_bytes;
    fits.then(|| {
        let mut p = main.clone();
        p.candidate.include = include;
        p
    })
}

/// The partial index: the rare constant condition as WHERE, the rest as keys (the
/// condition's own column when nothing else is left).
fn partial_variant(
    table: &Table,
    s: &Search,
    tail: &[SortKey],
    partial: Partial,
) -> Option<Proposal> {
    let mut keys: Vec<SortKey> = s
        .eqs
        .iter()
        .filter(|e| e.key != partial.key)
        .map(|e| asc(&e.key))
        .collect();
    let n_eq = keys.len();
    keys.extend(tail.iter().filter(|k| k.key != partial.key).cloned());
    if keys.is_empty() {
        keys.push(asc(&partial.key));
    }
    let mut c = candidate(table, keys);
    c.predicate = Some(partial.sql);
    Some(Proposal {
        candidate: c,
        n_eq,
        lone: None,
    })
}

/// A join key on its own table: alone, and before the access's equalities.
fn join_key(table: &Table, s: &Search, col: &Name) -> Vec<Proposal> {
    let key = KeyExpr::column(col.clone());
    let share = table
        .column(col)
        .and_then(|c| c.stats.as_ref())
        .map(|st| selectivity::parameter_share(st, table.reltuples.max(1.0)));
    let mut out = vec![Proposal {
        candidate: candidate(table, vec![asc(&key)]),
        n_eq: 1,
        lone: share.map(|sh| (col.to_string(), sh)),
    }];
    let others: Vec<SortKey> = s
        .eqs
        .iter()
        .filter(|e| e.key != key)
        .map(|e| asc(&e.key))
        .collect();
    if !others.is_empty() {
        let mut keys = vec![asc(&key)];
        keys.extend(others);
        let n_eq = keys.len();
        out.push(Proposal {
            candidate: candidate(table, keys),
            n_eq,
            lone: None,
        });
    }
    out
}
