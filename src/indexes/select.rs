//! The choice of indexes over the whole workload (pure: statements, candidates and what-if
//! costs in, [`Advice`] out).
//!
//! Greedy by benefit per byte, in the spirit of Extend (Schlosser, Kossmann, Boissier, ICDE
//! 2019): each round takes the move that saves the most weighted workload cost per byte of new
//! index, given the indexes already chosen. A move is one candidate, or the not-yet-chosen
//! rest of a set that some statement's plan used together (two indexes under a BitmapOr, one
//! per side of a join): a pair that helps only together is chosen together. The cost of a
//! statement with a set of indexes is [`Costs::estimate`]: the best costed subset, so a
//! candidate whose gain needs an already chosen one is credited with it.
//!
//! Weights: each statement's plan cost counts [`Query::weight`] times (calls × mean time,
//! else calls).
//!
//! A move is taken only when, for at least one statement, it saves at least
//! `index_min_gain_cost` plan cost units per run and `index_min_gain_ratio` of that
//! statement's base cost; and when its write cost does not exceed what it saves:
//!
//! ```text
//! write cost  = index_write_cost_per_row × writes_per_second(table) × stats window (s)
//!             = index_write_cost_per_row × rows inserted, updated and deleted in the window
//! read saving = Σ over the statements it helps of calls × (plan cost before − after)
//! ```
//!
//! Both are plan cost units over the same window: the statements' calls and the table's
//! writes are taken as counted over one statistics window (pg_stat_statements and
//! pg_stat_user_tables reset together). The write cost is applied only when every statement
//! the move helps came from pg_stat_statements: a `--query` or a file has no call rate to
//! weigh writes against. HOT updates are counted as writes too (an index on an updated column
//! makes them non-HOT): the model errs towards fewer indexes on written tables.
//!
//! It stops when no move passes, or at the budget (`max_indexes`, `max_size_bytes`); the
//! useful moves left then are dropped as over budget. Every candidate not chosen gets exactly
//! one [`Dropped`] reason and every statement no suggestion helps exactly one [`LeftAlone`].

use std::collections::{BTreeMap, BTreeSet};

use crate::advise::Thresholds;
use crate::indexes::model::{
    Advice, CandidateId, CandidateSet, Catalog, Costs, Dropped, Helped, LeftAlone, Query, QueryId,
    Reason, Source, Suggestion,
};

/// How much the advice may propose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// `--max-indexes`.
    pub max_indexes: Option<usize>,
    /// `--max-size`: the sum of the proposed indexes' estimated sizes.
    pub max_size_bytes: Option<i64>,
}

/// A size for a candidate whose size is not known: one 8 kB page (never divide by zero).
const MIN_SIZE: i64 = 8192;

/// A change in plan cost smaller than this is no change (plan costs are rounded to 0.01).
const EPSILON: f64 = 0.005;

/// Chooses the indexes to propose; see the module header.
pub fn select(
    queries: &[Query],
    set: &CandidateSet,
    costs: &Costs,
    catalog: &Catalog,
    t: &Thresholds,
    budget: &Budget,
) -> Advice {
    let ctx = Context::new(queries, set, costs, catalog, t);
    let mut chosen: Vec<CandidateId> = Vec::new();
    let mut benefits: Vec<f64> = Vec::new();
    // Moves that did not fit the budget: not offered again (their members may still come
    // in alone or in another move).
    let mut skipped: BTreeSet<Vec<CandidateId>> = BTreeSet::new();
    let mut size_used: i64 = 0;

    loop {
        let mut moves: Vec<(Vec<CandidateId>, Verdict)> = ctx
            .moves(&chosen, &skipped)
            .into_iter()
            .map(|m| {
                let v = ctx.judge(&m, &chosen);
                (m, v)
            })
            .filter(|(_, v)| v.reason.is_none())
            .collect();
        if moves.is_empty() {
            break;
        }
        // Best benefit per byte first; ties by the candidates' order (stable output).
        moves.sort_by(|(ma, a), (mb, b)| {
            let ra = a.benefit / ctx.bytes(ma) as f64;
            let rb = b.benefit / ctx.bytes(mb) as f64;
            rb.total_cmp(&ra).then_with(|| ma.cmp(mb))
        });
        let fits = |m: &[CandidateId]| {
            budget
                .max_indexes
                .is_none_or(|n| chosen.len() + m.len() <= n)
                && budget
                    .max_size_bytes
                    .is_none_or(|max| size_used + ctx.bytes(m) <= max)
        };
        match moves.iter().position(|(m, _)| fits(m)) {
            Some(i) => {
                let (m, v) = &moves[i];
                // Everything better per byte that did not fit is over budget.
                skipped.extend(moves[..i].iter().map(|(m, _)| m.clone()));
                size_used += ctx.bytes(m);
                // A move of several shares its benefit by size.
                let total = ctx.bytes(m) as f64;
                for c in m {
                    chosen.push(*c);
                    benefits.push(v.benefit * ctx.bytes(&[*c]) as f64 / total);
                }
            }
            None => {
                skipped.extend(moves.into_iter().map(|(m, _)| m));
                break;
            }
        }
    }
    ctx.prune(&mut chosen, &mut benefits);
    // Over budget: the members of a move that did not fit, unless chosen after all.
    let over_budget: BTreeSet<CandidateId> = skipped
        .iter()
        .flatten()
        .copied()
        .filter(|c| !chosen.contains(c))
        .collect();
    ctx.advice(&chosen, &benefits, &over_budget)
}

/// Why a move is not taken (None: it is acceptable), and what it would save.
struct Verdict {
    /// Weighted workload cost saved.
    benefit: f64,
    reason: Option<Reason>,
}

struct Context<'a> {
    queries: &'a [Query],
    set: &'a CandidateSet,
    costs: &'a Costs,
    catalog: &'a Catalog,
    t: &'a Thresholds,
    /// Statements the selection works for: base cost known, not set aside by the candidate
    /// stage, not under the initial cost threshold.
    eligible: Vec<bool>,
    /// For each candidate, the eligible statements with a costed set containing it.
    statements_of: BTreeMap<CandidateId, BTreeSet<QueryId>>,
}

impl<'a> Context<'a> {
    fn new(
        queries: &'a [Query],
        set: &'a CandidateSet,
        costs: &'a Costs,
        catalog: &'a Catalog,
        t: &'a Thresholds,
    ) -> Self {
        let set_aside: BTreeSet<QueryId> = set.left_alone.iter().map(|(q, _)| *q).collect();
        let total_weight: f64 = queries.iter().map(Query::weight).sum();
        let eligible: Vec<bool> = (0..queries.len())
            .map(|q| {
                !set_aside.contains(&q)
                    && !costs.failed.contains_key(&q)
                    && costs.base.get(q).copied().flatten().is_some_and(|b| {
                        b >= t.index_min_initial_cost
                            || (queries[q].mean_ms.is_some()
                                && queries[q].weight()
                                    >= t.index_cheap_statement_min_share * total_weight)
                    })
            })
            .collect();
        let mut statements_of: BTreeMap<CandidateId, BTreeSet<QueryId>> = BTreeMap::new();
        for (q, s) in costs.with.keys() {
            if eligible.get(*q).copied().unwrap_or(false) {
                for c in s {
                    if *c < set.candidates.len() && !costs.candidate_failed.contains_key(c) {
                        statements_of.entry(*c).or_default().insert(*q);
                    }
                }
            }
        }
        Context {
            queries,
            set,
            costs,
            catalog,
            t,
            eligible,
            statements_of,
        }
    }

    /// Whether `m` is one candidate whose leading keys are all the keys of a chosen one on
    /// the same table, with the same predicate (`(a, b)` after `(a)`).
    fn extends_chosen(&self, m: &[CandidateId], chosen: &[CandidateId]) -> bool {
        let [c] = m else {
            return false;
        };
        let new = &self.set.candidates[*c];
        chosen.iter().any(|x| {
            let old = &self.set.candidates[*x];
            old.schema == new.schema
                && old.table == new.table
                && old.predicate == new.predicate
                && old.keys.len() < new.keys.len()
                && new.keys[..old.keys.len()]
                    .iter()
                    .zip(&old.keys)
                    .all(|(a, b)| a.key == b.key)
                && (0..old.keys.len()).all(|i| old.opclass(i) == new.opclass(i))
        })
    }

    /// The share of `q`'s base cost saved by a costed set of two or more indexes its plan
    /// used together, all of them in `after` and one of them in `m` (0 when there is none).
    fn completed_together(&self, q: QueryId, m: &[CandidateId], after: &[CandidateId]) -> f64 {
        let base = self.base(q).max(EPSILON);
        self.costs
            .with
            .range((q, Vec::new())..(q + 1, Vec::new()))
            .filter(|(_, c)| {
                c.used.len() >= 2
                    && c.used.iter().all(|x| after.contains(x))
                    && c.used.iter().any(|x| m.contains(x))
            })
            .map(|(_, c)| (base - c.cost) / base)
            .fold(0.0, f64::max)
    }

    /// Drops every chosen index the others make useless: one whose removal raises no
    /// statement's estimated cost (a `(a)` chosen first, then `(a, b)` that serves its
    /// statements as well). Newest kept first; the benefit of a dropped one goes to none.
    fn prune(&self, chosen: &mut Vec<CandidateId>, benefits: &mut Vec<f64>) {
        let mut i = 0;
        while i < chosen.len() {
            let without: Vec<CandidateId> = chosen
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != i)
                .map(|(_, c)| *c)
                .collect();
            let needed = (0..self.queries.len()).any(|q| {
                self.eligible[q] && self.estimate(q, &without) > self.estimate(q, chosen) + EPSILON
            });
            if needed {
                i += 1;
            } else {
                chosen.remove(i);
                let b = benefits.remove(i);
                // What it saved is now saved by the ones that made it redundant.
                if let Some(last) = benefits.last_mut() {
                    *last += b;
                }
            }
        }
    }

    fn bytes(&self, m: &[CandidateId]) -> i64 {
        m.iter()
            .map(|c| {
                self.costs
                    .size_bytes
                    .get(c)
                    .copied()
                    .unwrap_or(MIN_SIZE)
                    .max(MIN_SIZE)
            })
            .sum()
    }

    fn weight(&self, q: QueryId) -> f64 {
        self.queries[q].weight()
    }

    fn estimate(&self, q: QueryId, with: &[CandidateId]) -> f64 {
        self.costs.estimate(q, with).unwrap_or(0.0)
    }

    fn base(&self, q: QueryId) -> f64 {
        self.costs.base.get(q).copied().flatten().unwrap_or(0.0)
    }

    /// Moves worth judging: each candidate not chosen, and the unchosen rest of every
    /// costed set of two or more that a plan used together.
    fn moves(
        &self,
        chosen: &[CandidateId],
        skipped: &BTreeSet<Vec<CandidateId>>,
    ) -> Vec<Vec<CandidateId>> {
        let open = |c: &CandidateId| !chosen.contains(c);
        let mut moves: BTreeSet<Vec<CandidateId>> = self
            .statements_of
            .keys()
            .filter(|c| open(c))
            .map(|c| vec![*c])
            .collect();
        for ((q, s), costed) in &self.costs.with {
            if s.len() < 2 || !self.eligible[*q] || costed.used.len() < 2 {
                continue;
            }
            let rest: Vec<CandidateId> = costed
                .used
                .iter()
                .copied()
                .filter(|c| !chosen.contains(c))
                .collect();
            if rest.len() >= 2
                && rest
                    .iter()
                    .all(|c| open(c) && self.statements_of.contains_key(c))
            {
                moves.insert(rest);
            }
        }
        moves.into_iter().filter(|m| !skipped.contains(m)).collect()
    }

    /// What adding `m` to `chosen` saves, and why it would not be taken.
    fn judge(&self, m: &[CandidateId], chosen: &[CandidateId]) -> Verdict {
        let mut after: Vec<CandidateId> = chosen.to_vec();
        after.extend_from_slice(m);
        let statements: BTreeSet<QueryId> = m
            .iter()
            .filter_map(|c| self.statements_of.get(c))
            .flatten()
            .copied()
            .collect();
        let mut benefit = 0.0;
        let mut saved_per_call_window = 0.0;
        let mut all_counted = true;
        let mut best: Option<(f64, f64)> = None; // (gain, relative) of the best statement
        let mut passes = false;
        let mut helps_any = false;
        for q in statements {
            let before = self.estimate(q, chosen);
            let now = self.estimate(q, &after);
            let gain = before - now;
            if gain <= EPSILON {
                continue;
            }
            helps_any = true;
            // Relative to the statement's base cost; a move that completes a set of indexes
            // one plan used together (both sides of a join, a BitmapOr) is judged by what the
            // whole set saves, so the second index of a join is not refused for coming second.
            // An extension of a chosen index (its keys first, more after: Extend's move) is
            // judged against what the statement costs with the chosen ones, since it replaces
            // the index it extends (see `prune`).
            let together = self.completed_together(q, m, &after);
            let of = if self.extends_chosen(m, chosen) {
                before
            } else {
                self.base(q)
            };
            let relative = (gain / of.max(EPSILON)).max(together);
            if best.is_none_or(|(g, _)| gain > g) {
                best = Some((gain, relative));
            }
            if gain >= self.t.index_min_gain_cost && relative >= self.t.index_min_gain_ratio {
                passes = true;
            }
            benefit += self.weight(q) * gain;
            saved_per_call_window += self.queries[q].calls.max(1) as f64 * gain;
            all_counted &= matches!(self.queries[q].source, Source::StatStatements { .. });
        }
        let (gain, relative) = best.unwrap_or((0.0, 0.0));
        if !helps_any || !passes {
            return Verdict {
                benefit,
                reason: Some(Reason::GainBelowThreshold { gain, relative }),
            };
        }
        if all_counted {
            let mut penalty = 0.0;
            let mut worst_wps: f64 = 0.0;
            for c in m {
                let cand = &self.set.candidates[*c];
                if let Some(table) = self.catalog.table(&cand.schema, &cand.table) {
                    if let (Some(wps), Some(window)) =
                        (table.writes_per_second(), table.stats_window_seconds)
                    {
                        penalty += self.t.index_write_cost_per_row * wps * window;
                        worst_wps = worst_wps.max(wps);
                    }
                }
            }
            if penalty > saved_per_call_window {
                return Verdict {
                    benefit,
                    reason: Some(Reason::WriteCost {
                        writes_per_second: worst_wps,
                    }),
                };
            }
        }
        Verdict {
            benefit,
            reason: None,
        }
    }

    fn advice(
        &self,
        chosen: &[CandidateId],
        benefits: &[f64],
        over_budget: &BTreeSet<CandidateId>,
    ) -> Advice {
        let mut advice = Advice::default();
        for (i, c) in chosen.iter().enumerate() {
            let cand = &self.set.candidates[*c];
            let helps = (0..self.queries.len())
                .filter(|q| self.helped_by(*q, chosen).contains(c))
                .map(|q| self.helped(q, chosen))
                .collect();
            let name = cand.index_name();
            advice.suggestions.push(Suggestion {
                candidate: cand.clone(),
                ddl: cand.ddl(&name, true),
                name,
                size_bytes: self.bytes(&[*c]),
                benefit: benefits[i],
                helps,
            });
        }

        // Candidates: the stage's structural drops as they are, then every costed one not
        // chosen, once.
        advice.dropped.extend(self.set.dropped.iter().cloned());
        let pairs: Vec<Vec<CandidateId>> = self
            .moves(chosen, &BTreeSet::new())
            .into_iter()
            .filter(|m| m.len() > 1)
            .collect();
        for c in 0..self.set.candidates.len() {
            if chosen.contains(&c) {
                continue;
            }
            let reason = self.candidate_reason(c, chosen, over_budget, &pairs);
            advice.dropped.push(Dropped {
                candidate: self.set.candidates[c].clone(),
                reason,
            });
        }

        // Statements.
        for (q, query) in self.queries.iter().enumerate() {
            let base = self.costs.base.get(q).copied().flatten();
            if let Some(b) = base {
                advice.workload_cost_before += self.weight(q) * b;
                advice.workload_cost_after += self.weight(q) * self.estimate(q, chosen);
            }
            if !self.helped_by(q, chosen).is_empty() {
                continue;
            }
            advice.left_alone.push(LeftAlone {
                fingerprint: query.fingerprint.clone(),
                text: query.text.clone(),
                calls: query.calls,
                reason: self.statement_reason(q, chosen, over_budget),
            });
        }
        advice
    }

    /// The chosen indexes the best plan of `q` uses (the least costed subset of `chosen`),
    /// when that plan costs less than the base one.
    fn helped_by(&self, q: QueryId, chosen: &[CandidateId]) -> Vec<CandidateId> {
        if !self.eligible[q] {
            return Vec::new();
        }
        let base = self.base(q);
        self.costs
            .with
            .range((q, Vec::new())..(q + 1, Vec::new()))
            .filter(|((_, set), c)| {
                set.iter().all(|x| chosen.contains(x)) && c.cost < base - EPSILON
            })
            .min_by(|(ka, a), (kb, b)| a.cost.total_cmp(&b.cost).then_with(|| ka.cmp(kb)))
            .map(|((_, set), c)| {
                if c.used.is_empty() {
                    set.clone()
                } else {
                    c.used.clone()
                }
            })
            .unwrap_or_default()
    }

    fn helped(&self, q: QueryId, chosen: &[CandidateId]) -> Helped {
        let query = &self.queries[q];
        Helped {
            fingerprint: query.fingerprint.clone(),
            text: query.text.clone(),
            calls: query.calls,
            cost_before: self.base(q),
            cost_after: self.estimate(q, chosen),
        }
    }

    /// The one reason a candidate is not proposed.
    fn candidate_reason(
        &self,
        c: CandidateId,
        chosen: &[CandidateId],
        over_budget: &BTreeSet<CandidateId>,
        pairs: &[Vec<CandidateId>],
    ) -> Reason {
        if let Some(e) = self.costs.candidate_failed.get(&c) {
            return Reason::ExplainFailed { error: e.clone() };
        }
        if over_budget.contains(&c) {
            return Reason::OverBudget;
        }
        if self.statements_of.contains_key(&c) {
            // Judged against the final choice: below the gain thresholds (possibly because a
            // chosen index already does its work) or refused for its write cost. A candidate
            // that helps only together with another one is judged with it.
            let alone = self.judge(&[c], chosen);
            let together = pairs
                .iter()
                .filter(|m| m.contains(&c))
                .map(|m| self.judge(m, chosen))
                .find(|v| matches!(v.reason, Some(Reason::WriteCost { .. })));
            return match (alone.reason, together) {
                (Some(Reason::GainBelowThreshold { .. }), Some(v)) => v.reason.expect("some"),
                (Some(r), _) => r,
                // Acceptable now but not taken: the loop ends only when nothing passes, so
                // this is a move that passes only after others (never in practice).
                (None, _) => Reason::GainBelowThreshold {
                    gain: 0.0,
                    relative: 0.0,
                },
            };
        }
        // Not costed for any statement the selection works for: say why from its statements.
        let mine: Vec<QueryId> = (0..self.queries.len())
            .filter(|q| self.set.per_query.get(*q).is_some_and(|l| l.contains(&c)))
            .collect();
        if let Some(e) = mine.iter().find_map(|q| self.costs.failed.get(q)) {
            if mine.iter().all(|q| self.costs.failed.contains_key(q)) {
                return Reason::ExplainFailed { error: e.clone() };
            }
        }
        let low = mine
            .iter()
            .filter_map(|q| self.costs.base.get(*q).copied().flatten())
            .filter(|b| *b < self.t.index_min_initial_cost)
            .fold(None, |m: Option<f64>, b| Some(m.map_or(b, |m| m.max(b))));
        if let Some(cost) = low {
            return Reason::LowInitialCost { cost };
        }
        if let Some((_, r)) = self.set.left_alone.iter().find(|(q, _)| mine.contains(q)) {
            return r.clone();
        }
        Reason::GainBelowThreshold {
            gain: 0.0,
            relative: 0.0,
        }
    }

    /// The one reason a statement gets no suggestion.
    fn statement_reason(
        &self,
        q: QueryId,
        chosen: &[CandidateId],
        over_budget: &BTreeSet<CandidateId>,
    ) -> Reason {
        if let Some((_, r)) = self.set.left_alone.iter().find(|(x, _)| *x == q) {
            return r.clone();
        }
        if let Some(e) = self.costs.failed.get(&q) {
            return Reason::ExplainFailed { error: e.clone() };
        }
        let Some(base) = self.costs.base.get(q).copied().flatten() else {
            return Reason::ExplainFailed {
                error: "not costed".to_string(),
            };
        };
        if !self.eligible[q] && base < self.t.index_min_initial_cost {
            return Reason::LowInitialCost { cost: base };
        }
        let mine: BTreeSet<CandidateId> = self
            .costs
            .with
            .keys()
            .filter(|(x, _)| *x == q)
            .flat_map(|(_, s)| s.iter().copied())
            .collect();
        if mine.is_empty() {
            // Its candidates could not be made at all.
            let failed = self
                .set
                .per_query
                .get(q)
                .into_iter()
                .flatten()
                .find_map(|c| self.costs.candidate_failed.get(c));
            return match failed {
                Some(e) => Reason::ExplainFailed { error: e.clone() },
                None => Reason::NothingToIndex,
            };
        }
        // Helped by something left over budget.
        let all: Vec<CandidateId> = chosen.iter().chain(over_budget.iter()).copied().collect();
        if mine.iter().any(|c| over_budget.contains(c)) && self.estimate(q, &all) < base - EPSILON {
            return Reason::OverBudget;
        }
        // A candidate of its own that gains enough but costs its table more in writes.
        for ((_, set), _) in self.costs.with.range((q, Vec::new())..(q + 1, Vec::new())) {
            let m: Vec<CandidateId> = set
                .iter()
                .copied()
                .filter(|c| !chosen.contains(c))
                .collect();
            if m.is_empty() {
                continue;
            }
            if let Some(r @ Reason::WriteCost { .. }) = self.judge(&m, chosen).reason {
                return r;
            }
        }
        // Else the best any costed set would still save it, below the thresholds.
        let now = self.estimate(q, chosen);
        let best = self
            .costs
            .with
            .range((q, Vec::new())..(q + 1, Vec::new()))
            .map(|(_, c)| c.cost)
            .fold(now, f64::min);
        let gain = (now - best).max(0.0);
        Reason::GainBelowThreshold {
            gain,
            relative: gain / base.max(EPSILON),
        }
    }
}
