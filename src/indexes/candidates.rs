//! The indexes worth costing for a workload, and what is set aside structurally (pure).
//!
//! For every table access of every statement ([`Shape`]), [`generate`] proposes btree
//! candidates by the rules of sound column order: the equality columns, most selective
//! first (pg_stats; statement order without statistics), then at most one range column or
//! the ORDER BY keys of a top-N (directions as the statement asks, DESC included); the
//! most selective column alone; a covering variant (INCLUDE the few narrow columns the
//! statement still reads) so an index-only scan pays; a partial variant for a constant
//! condition that keeps a small share of rows; expression keys as they are; each join key
//! on its own table; one candidate per alternative of an OR group; the GROUP BY keys in the
//! order given (and INCLUDing the columns aggregated), so that a GroupAggregate reads the
//! groups in index order; a `LIKE 'prefix%'` key with the pattern operator class of its type
//! (`text_pattern_ops`, ...) when its collation is not C, as only such a btree serves it there
//! (<https://www.postgresql.org/docs/current/indexes-opclass.html>).
//!
//! It sets aside, with the reason and before any costing: tables too small to matter
//! ([`Reason::TinyTable`]), candidates an existing valid index already serves
//! ([`Reason::AlreadyIndexed`]) and lone equality columns that keep too many rows per value
//! ([`Reason::LowSelectivity`]); a statement whose only condition is a LIKE or ILIKE no btree
//! searches (ILIKE, `LIKE $1`) says so ([`Reason::UnsearchablePattern`]).
//! It never decides by cost: that is `whatif` and `select`.

mod existing;
mod rules;
mod selectivity;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use super::model::{
    Candidate, CandidateId, CandidateSet, Catalog, Dropped, Query, QueryId, Reason, Shape, Table,
};
use crate::advise::thresholds::Thresholds;

/// The candidates for every query (`shapes[i]` is the shape of `queries[i]`), deduplicated
/// across queries, with what was dropped and the queries left alone.
pub fn generate(
    queries: &[Query],
    shapes: &[Result<Shape, Reason>],
    catalog: &Catalog,
    t: &Thresholds,
) -> CandidateSet {
    let mut builder = Builder {
        set: CandidateSet {
            per_query: vec![Vec::new(); queries.len()],
            ..CandidateSet::default()
        },
        ids: HashMap::new(),
        existing: existing::Existing::new(catalog),
    };
    for qid in 0..queries.len() {
        match shapes.get(qid) {
            Some(Ok(shape)) => builder.query(qid, shape, catalog, t),
            Some(Err(reason)) => builder.set.left_alone.push((qid, reason.clone())),
            None => builder.set.left_alone.push((qid, Reason::NotIndexable)),
        }
    }
    builder.set
}

/// One proposed index with what the structural checks need to know about it.
#[derive(Debug, Clone)]
struct Proposal {
    candidate: Candidate,
    /// How many leading keys are searched by equality (their order and direction do not
    /// matter to a scan).
    n_eq: usize,
    /// For a lone equality key: the column and the share of rows one value keeps.
    lone: Option<(String, f64)>,
}

struct Builder<'c> {
    set: CandidateSet,
    ids: HashMap<Candidate, CandidateId>,
    existing: existing::Existing<'c>,
}

impl Builder<'_> {
    fn query(&mut self, qid: QueryId, shape: &Shape, catalog: &Catalog, t: &Thresholds) {
        let mut tiny = None;
        let mut all_tiny = true;
        let mut first_drop = None;
        let mut unsearchable = None;
        for access in &shape.accesses {
            let Some(table) = catalog.table(&access.schema, &access.table) else {
                continue;
            };
            if let Some(reason) = tiny_table(table, t) {
                tiny.get_or_insert(reason);
                continue;
            }
            all_tiny = false;
            if unsearchable.is_none() {
                unsearchable = rules::unsearchable(access, table);
            }
            for proposal in rules::proposals(access, table, t) {
                match self.check(&proposal, table, t) {
                    Ok(()) => self.keep(qid, proposal.candidate),
                    Err(reason) => {
                        first_drop.get_or_insert_with(|| reason.clone());
                        self.drop(proposal.candidate, reason);
                    }
                }
            }
        }
        if self.set.per_query[qid].is_empty() {
            let reason = match tiny.filter(|_| all_tiny) {
                Some(tiny) => tiny,
                None => first_drop
                    .or(unsearchable)
                    .unwrap_or(Reason::NothingToIndex),
            };
            self.set.left_alone.push((qid, reason));
        }
    }

    /// The structural checks: an existing index serves it, or it is a lone unselective
    /// column.
    fn check(&self, p: &Proposal, table: &Table, t: &Thresholds) -> Result<(), Reason> {
        if let Some(index) = self.existing.serving(&p.candidate, p.n_eq) {
            return Err(Reason::AlreadyIndexed { index });
        }
        match &p.lone {
            Some((column, share)) if *share > t.index_low_selectivity_share => {
                Err(Reason::LowSelectivity {
                    column: column.clone(),
                    rows_per_value: (share * table.reltuples.max(0.0)).round(),
                })
            }
            _ => Ok(()),
        }
    }

    fn keep(&mut self, qid: QueryId, candidate: Candidate) {
        let next = self.set.candidates.len();
        let id = *self.ids.entry(candidate.clone()).or_insert(next);
        if id == next {
            self.set.candidates.push(candidate);
        }
        let mine = &mut self.set.per_query[qid];
        if !mine.contains(&id) {
            mine.push(id);
        }
    }

    fn drop(&mut self, candidate: Candidate, reason: Reason) {
        if !self.set.dropped.iter().any(|d| d.candidate == candidate) {
            self.set.dropped.push(Dropped { candidate, reason });
        }
    }
}

/// A table below both tiny-table thresholds (never analyzed: not known to be tiny).
fn tiny_table(table: &Table, t: &Thresholds) -> Option<Reason> {
    let pages = u64::try_from(table.relpages.max(0)).unwrap_or(0);
    let tiny = table.reltuples >= 0.0
        && table.reltuples < t.index_tiny_table_rows
        && pages < t.index_tiny_table_pages;
    tiny.then(|| Reason::TinyTable {
        table: table.qualified().to_string(),
        rows: table.reltuples,
        pages: table.relpages,
    })
}
