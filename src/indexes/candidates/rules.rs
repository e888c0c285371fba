//! The candidate rules for one table access (see [`super`]).

use super::selectivity::{self, Partial};
use super::Proposal;
use crate::advise::thresholds::Thresholds;
use crate::indexes::model::{
    Candidate, Column, KeyExpr, PatternLimit, Predicate, PredicateOp, Reason, SortKey, Table,
    TableAccess,
};
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
    /// The operator class the range key needs: a pattern one for a LIKE prefix on a column
    /// whose collation is not C.
    range_opclass: Option<Name>,
}

fn search(preds: &[Predicate], table: &Table, t: &Thresholds) -> Search {
    let mut eqs: Vec<Eq> = Vec::new();
    let mut range = None;
    let mut range_opclass = None;
    for p in preds {
        if p.op.is_equality() && !eqs.iter().any(|e| e.key == p.key) {
            eqs.push(Eq {
                key: p.key.clone(),
                share: selectivity::share(p, table),
            });
        } else if p.op.is_range() && range.is_none() {
            let opclass = match p.op {
                PredicateOp::LikePrefix => match like_opclass(&p.key, table) {
                    Ok(opclass) => opclass,
                    // No btree serves it: see `unsearchable`.
                    Err(_) => continue,
                },
                _ => None,
            };
            range = Some(p.key.clone());
            range_opclass = opclass;
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
        range_opclass = None;
    }
    Search {
        eqs,
        range,
        range_opclass,
    }
}

/// The operator class a btree key needs to serve `key LIKE 'prefix%'`: None (the default)
/// when the key sorts byte by byte (collation C or POSIX), else the pattern operator class of
/// its type ([`Column::pattern_opclass`]; `text_pattern_ops` for an expression over columns
/// that do not all sort bytewise). Err when its type has none.
fn like_opclass(key: &KeyExpr, table: &Table) -> Result<Option<Name>, PatternLimit> {
    match key {
        KeyExpr::Column { name } => {
            let Some(col) = table.column(name) else {
                return Err(PatternLimit::NoPatternOpclass);
            };
            if col.sorts_bytewise() {
                return Ok(None);
            }
            col.pattern_opclass()
                .map(|o| Some(Name::from(o)))
                .ok_or(PatternLimit::NoPatternOpclass)
        }
        KeyExpr::Expression { columns, .. } => {
            let bytewise = !columns.is_empty()
                && columns
                    .iter()
                    .all(|c| table.column(c).is_some_and(Column::sorts_bytewise));
            Ok((!bytewise).then(|| Name::from("text_pattern_ops")))
        }
    }
}

/// Why a LIKE or ILIKE of the access gets no candidate, for the statement's reason when it
/// gets nothing else: the first [`PredicateOp::Pattern`], or a prefix no operator class
/// serves.
pub(super) fn unsearchable(access: &TableAccess, table: &Table) -> Option<Reason> {
    access.predicates.iter().find_map(|p| {
        let why = match p.op {
            PredicateOp::Pattern { why } => why,
            PredicateOp::LikePrefix => like_opclass(&p.key, table).err()?,
            _ => return None,
        };
        Some(Reason::UnsearchablePattern {
            column: match &p.key {
                KeyExpr::Column { name } => name.to_string(),
                KeyExpr::Expression { sql, .. } => sql.clone(),
            },
            why,
        })
    })
}

fn asc(key: &KeyExpr) -> SortKey {
    SortKey {
        key: key.clone(),
        desc: false,
        nulls_first: None,
    }
}

/// What follows the equalities in one candidate: sort or range keys, and the operator class
/// of its last key when that is a LIKE prefix needing one.
#[derive(Debug, Clone, Default, PartialEq)]
struct Tail {
    keys: Vec<SortKey>,
    opclass: Option<Name>,
}

/// What follows the equalities: the ORDER BY keys of a top-N, the range, the GROUP BY keys
/// (in the order given: a GroupAggregate reads the groups in the index's order, with no sort
/// or hash), as separate options (one empty one when there is none of them).
fn tails(access: &TableAccess, s: &Search) -> Vec<Tail> {
    let not_eq = |k: &KeyExpr| !s.eqs.iter().any(|e| &e.key == k);
    let mut tails: Vec<Tail> = Vec::new();
    if !access.order_by.is_empty() && access.limit.is_some() {
        let sort: Vec<SortKey> = access
            .order_by
            .iter()
            .filter(|k| not_eq(&k.key))
            .cloned()
            .collect();
        tails.push(Tail {
            keys: sort,
            opclass: None,
        });
    }
    if let Some(r) = &s.range {
        // A pattern operator class does not keep the collation's order: no sort served.
        let served = s.range_opclass.is_none()
            && tails
                .first()
                .and_then(|t| t.keys.first())
                .is_some_and(|k| &k.key == r);
        if !served {
            tails.push(Tail {
                keys: vec![asc(r)],
                opclass: s.range_opclass.clone(),
            });
        }
    }
    let group: Vec<SortKey> = access
        .group_by
        .iter()
        .filter(|k| not_eq(k))
        .map(asc)
        .collect();
    if !group.is_empty() && !tails.iter().any(|t| t.keys == group) {
        tails.push(Tail {
            keys: group,
            opclass: None,
        });
    }
    if tails.is_empty() {
        tails.push(Tail::default());
    }
    tails
}

/// Every candidate for one access.
pub(super) fn proposals(access: &TableAccess, table: &Table, t: &Thresholds) -> Vec<Proposal> {
    let s = search(&access.predicates, table, t);
    let tails = tails(access, &s);
    let mut out = Vec::new();
    // The plain candidate of the GROUP BY tail, when it is not the first one.
    let mut grouped = None;
    for (i, tail) in tails.iter().enumerate() {
        let p = plain(table, &s, tail);
        if i > 0 && p.is_some() && is_group_tail(access, &s, tail) {
            grouped = p.clone();
        }
        out.extend(p);
    }
    out.extend(alone(table, &s, &tails));
    if let Some(main) = out.first() {
        out.extend(covering(access, table, main, t));
    }
    // An index-only scan over the groups: the GROUP BY keys INCLUDing the columns aggregated.
    if let Some(grouped) = grouped {
        out.extend(covering(access, table, &grouped, t));
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
        let tail = Tail {
            keys: s.range.iter().map(asc).collect(),
            opclass: s.range_opclass.clone(),
        };
        out.extend(plain(table, &s, &tail));
    }
    out
}

/// Whether the tail is the access's GROUP BY keys (those not searched by equality).
fn is_group_tail(access: &TableAccess, s: &Search, tail: &Tail) -> bool {
    let keys: Vec<&KeyExpr> = tail.keys.iter().map(|k| &k.key).collect();
    let group: Vec<&KeyExpr> = access
        .group_by
        .iter()
        .filter(|k| !s.eqs.iter().any(|e| &e.key == *k))
        .collect();
    !group.is_empty() && keys == group
}

fn candidate(table: &Table, keys: Vec<SortKey>) -> Candidate {
    Candidate::btree(table.schema.clone(), table.name.clone(), keys)
}

/// The equalities then the tail.
fn plain(table: &Table, s: &Search, tail: &Tail) -> Option<Proposal> {
    let mut keys: Vec<SortKey> = s.eqs.iter().map(|e| asc(&e.key)).collect();
    keys.extend(tail.keys.iter().cloned());
    if keys.is_empty() {
        return None;
    }
    let lone = match (s.eqs.as_slice(), tail.keys.is_empty()) {
        ([e], true) => lone(e),
        _ => None,
    };
    let mut candidate = candidate(table, keys);
    if tail.opclass.is_some() {
        candidate.set_opclass(candidate.keys.len() - 1, tail.opclass.clone());
    }
    Some(Proposal {
        candidate,
        n_eq: s.eqs.len(),
        lone,
    })
}

fn lone(e: &Eq) -> Option<(String, f64)> {
    Some((e.key.as_column()?.to_string(), e.share?))
}

/// The most selective equality alone, when the main candidate has more keys.
fn alone(table: &Table, s: &Search, tails: &[Tail]) -> Option<Proposal> {
    let first = s.eqs.first()?;
    if s.eqs.len() == 1 && tails.iter().all(|t| t.keys.is_empty()) {
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
fn partial_variant(table: &Table, s: &Search, tail: &Tail, partial: Partial) -> Option<Proposal> {
    let mut keys: Vec<SortKey> = s
        .eqs
        .iter()
        .filter(|e| e.key != partial.key)
        .map(|e| asc(&e.key))
        .collect();
    let n_eq = keys.len();
    let kept: Vec<SortKey> = tail
        .keys
        .iter()
        .filter(|k| k.key != partial.key)
        .cloned()
        .collect();
    let opclass = tail
        .opclass
        .clone()
        .filter(|_| kept.len() == tail.keys.len() && !kept.is_empty());
    keys.extend(kept);
    if keys.is_empty() {
        keys.push(asc(&partial.key));
    }
    let mut c = candidate(table, keys);
    if opclass.is_some() {
        c.set_opclass(c.keys.len() - 1, opclass);
    }
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
