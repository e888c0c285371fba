//! The workload-wide index selection, with what-if costs built in code (no server).

use std::collections::BTreeSet;

use pgopt::advise::Thresholds;
use pgopt::indexes::model::{
    Advice, Candidate, CandidateSet, Catalog, Costed, Costs, KeyExpr, Query, Reason, SortKey,
    Source, Table,
};
use pgopt::indexes::select::{select, Budget};

const MB: i64 = 1024 * 1024;

fn query(n: usize, calls: i64) -> Query {
    Query {
        fingerprint: format!("f{n}"),
        text: format!("SELECT {n}"),
        calls,
        mean_ms: None,
        source: Source::StatStatements { queryid: n as i64 },
    }
}

fn cand(table: &str, column: &str) -> Candidate {
    Candidate::btree(
        "public",
        table,
        vec![SortKey {
            key: KeyExpr::column(column),
            desc: false,
            nulls_first: None,
        }],
    )
}

/// Costs and candidates built statement by statement.
struct Case {
    queries: Vec<Query>,
    set: CandidateSet,
    costs: Costs,
    catalog: Catalog,
}

impl Case {
    fn new(candidates: Vec<Candidate>, sizes: &[i64]) -> Case {
        let costs = Costs {
            size_bytes: sizes.iter().copied().enumerate().collect(),
            ..Costs::default()
        };
        Case {
            queries: Vec::new(),
            set: CandidateSet {
                candidates,
                ..CandidateSet::default()
            },
            costs,
            catalog: Catalog {
                search_path: vec!["public".into()],
                ..Catalog::default()
            },
        }
    }

    /// A statement with its base cost and (set, cost, used) what-if costs.
    fn statement(&mut self, calls: i64, base: f64, with: &[(&[usize], f64, &[usize])]) -> usize {
        let q = self.queries.len();
        self.queries.push(query(q, calls));
        self.costs.base.push(Some(base));
        let mut mine = BTreeSet::new();
        for (set, cost, used) in with {
            mine.extend(set.iter().copied());
            self.costs.with.insert(
                (q, set.to_vec()),
                Costed {
                    cost: *cost,
                    used: used.to_vec(),
                },
            );
        }
        self.set.per_query.push(mine.into_iter().collect());
        q
    }

    fn table(&mut self, name: &str, writes: i64, window: f64) {
        self.catalog.tables.push(Table {
            schema: "public".into(),
            name: name.into(),
            reltuples: 1e6,
            n_tup_ins: writes,
            stats_window_seconds: Some(window),
            ..Table::default()
        });
    }

    fn select(&self, budget: Budget) -> Advice {
        let advice = select(
            &self.queries,
            &self.set,
            &self.costs,
            &self.catalog,
            &Thresholds::default(),
            &budget,
        );
        accounted_once(self, &advice);
        advice
    }
}

/// Every candidate is proposed or dropped, once; every statement helped or left alone, once.
fn accounted_once(case: &Case, advice: &Advice) {
    for c in &case.set.candidates {
        let n = advice
            .suggestions
            .iter()
            .filter(|s| &s.candidate == c)
            .count()
            + advice.dropped.iter().filter(|d| &d.candidate == c).count();
        assert_eq!(n, 1, "{c:?} in {advice:#?}");
    }
    for q in &case.queries {
        let helped = advice
            .suggestions
            .iter()
            .any(|s| s.helps.iter().any(|h| h.fingerprint == q.fingerprint));
        let alone = advice
            .left_alone
            .iter()
            .filter(|l| l.fingerprint == q.fingerprint)
            .count();
        assert_eq!(
            usize::from(helped) + alone,
            1,
            "{} in {advice:#?}",
            q.fingerprint
        );
    }
}

fn proposed(advice: &Advice) -> Vec<String> {
    advice.suggestions.iter().map(|s| s.name.clone()).collect()
}

fn reason_of<'a>(advice: &'a Advice, c: &Candidate) -> &'a Reason {
    &advice
        .dropped
        .iter()
        .find(|d| &d.candidate == c)
        .unwrap_or_else(|| panic!("{c:?} dropped"))
        .reason
}

fn left_alone<'a>(advice: &'a Advice, fingerprint: &str) -> &'a Reason {
    &advice
        .left_alone
        .iter()
        .find(|l| l.fingerprint == fingerprint)
        .unwrap_or_else(|| panic!("{fingerprint} left alone"))
        .reason
}

#[test]
fn the_greedy_takes_the_best_saving_per_byte_first() {
    // (a) saves 900 in 1 MB, (b) saves 950 in 10 MB: (a) is taken, and (b) then saves 50 of
    // a base of 1000, under the 20 % threshold.
    let mut case = Case::new(vec![cand("t", "a"), cand("t", "b")], &[MB, 10 * MB]);
    case.statement(10, 1000.0, &[(&[0], 100.0, &[0]), (&[1], 50.0, &[1])]);
    let advice = case.select(Budget::default());
    assert_eq!(proposed(&advice), vec!["t_a_idx"]);
    let s = &advice.suggestions[0];
    assert_eq!(s.size_bytes, MB);
    assert_eq!(s.helps[0].cost_before, 1000.0);
    assert_eq!(s.helps[0].cost_after, 100.0);
    assert!(
        s.ddl.starts_with("CREATE INDEX CONCURRENTLY \"t_a_idx\""),
        "{}",
        s.ddl
    );
    assert!(matches!(
        reason_of(&advice, &case.set.candidates[1]),
        Reason::GainBelowThreshold { gain, .. } if (*gain - 50.0).abs() < 1e-9
    ));
    assert_eq!(advice.workload_cost_before, 10.0 * 1000.0);
    assert_eq!(advice.workload_cost_after, 10.0 * 100.0);
}

#[test]
fn one_index_serving_two_statements_beats_one_index_for_each() {
    let mut case = Case::new(
        vec![cand("t", "shared"), cand("t", "only0"), cand("t", "only1")],
        &[MB, MB, MB],
    );
    case.statement(
        1,
        1000.0,
        &[
            (&[0], 100.0, &[0]),
            (&[1], 50.0, &[1]),
            (&[0, 1], 50.0, &[1]),
        ],
    );
    case.statement(
        1,
        1000.0,
        &[
            (&[0], 100.0, &[0]),
            (&[2], 50.0, &[2]),
            (&[0, 2], 50.0, &[2]),
        ],
    );
    let advice = case.select(Budget::default());
    assert_eq!(proposed(&advice), vec!["t_shared_idx"]);
    assert_eq!(advice.suggestions[0].helps.len(), 2);
    for c in &case.set.candidates[1..] {
        assert!(matches!(
            reason_of(&advice, c),
            Reason::GainBelowThreshold { .. }
        ));
    }
}

/// Three statements, each with its own index: (a) saves the most per byte, then (b), then (c).
fn three_independent() -> Case {
    let mut case = Case::new(
        vec![cand("t", "a"), cand("t", "b"), cand("t", "c")],
        &[MB, 2 * MB, 3 * MB],
    );
    for c in 0..3 {
        case.statement(1, 1000.0, &[(&[c], 10.0, &[c])]);
    }
    case
}

#[test]
fn the_budget_by_count_drops_the_rest_as_over_budget() {
    let case = three_independent();
    let advice = case.select(Budget {
        max_indexes: Some(2),
        max_size_bytes: None,
    });
    assert_eq!(proposed(&advice), vec!["t_a_idx", "t_b_idx"]);
    assert_eq!(
        reason_of(&advice, &case.set.candidates[2]),
        &Reason::OverBudget
    );
    assert_eq!(left_alone(&advice, "f2"), &Reason::OverBudget);
}

#[test]
fn the_budget_by_size_skips_what_does_not_fit_and_takes_what_still_does() {
    // Per byte: (a) 990 in 1 MB, then (b) 990 in 3 MB, then (c) 290 in 2 MB.
    let mut case = Case::new(
        vec![cand("t", "a"), cand("t", "b"), cand("t", "c")],
        &[MB, 3 * MB, 2 * MB],
    );
    case.statement(1, 1000.0, &[(&[0], 10.0, &[0])]);
    case.statement(1, 1000.0, &[(&[1], 10.0, &[1])]);
    case.statement(1, 300.0, &[(&[2], 10.0, &[2])]);
    let advice = case.select(Budget {
        max_indexes: None,
        max_size_bytes: Some(3 * MB + MB / 2),
    });
    // (b) would make 4 MB: over budget; (c) still fits.
    assert_eq!(proposed(&advice), vec!["t_a_idx", "t_c_idx"]);
    assert_eq!(
        reason_of(&advice, &case.set.candidates[1]),
        &Reason::OverBudget
    );
    assert_eq!(left_alone(&advice, "f1"), &Reason::OverBudget);
    let advice = case.select(Budget::default());
    assert_eq!(proposed(&advice), vec!["t_a_idx", "t_b_idx", "t_c_idx"]);
}

#[test]
fn thresholds_leave_alone_cheap_statements_and_drop_small_gains() {
    let mut case = Case::new(
        vec![
            cand("t", "cheap"),
            cand("t", "relative"),
            cand("t", "absolute"),
        ],
        &[MB, MB, MB],
    );
    // Base 50: under index_min_initial_cost (100).
    case.statement(1, 50.0, &[(&[0], 5.0, &[0])]);
    // Saves 50 of 1000: 5 %, under index_min_gain_ratio (20 %).
    case.statement(1, 1000.0, &[(&[1], 950.0, &[1])]);
    // Saves 8 of 110: 7 %... and 8 < index_min_gain_cost (10).
    case.statement(1, 110.0, &[(&[2], 102.0, &[2])]);
    let advice = case.select(Budget::default());
    assert!(advice.suggestions.is_empty(), "{advice:#?}");
    assert_eq!(
        left_alone(&advice, "f0"),
        &Reason::LowInitialCost { cost: 50.0 }
    );
    assert_eq!(
        reason_of(&advice, &case.set.candidates[0]),
        &Reason::LowInitialCost { cost: 50.0 }
    );
    assert!(matches!(
        left_alone(&advice, "f1"),
        Reason::GainBelowThreshold { gain, relative } if *gain == 50.0 && (*relative - 0.05).abs() < 1e-9
    ));
    assert!(matches!(
        reason_of(&advice, &case.set.candidates[2]),
        Reason::GainBelowThreshold { gain, .. } if *gain == 8.0
    ));
    // The same small absolute gain passes once the threshold is lowered.
    let mut t = Thresholds::default();
    t.set("index_min_gain_cost", "5").unwrap();
    t.set("index_min_gain_ratio", "0.05").unwrap();
    let advice = select(
        &case.queries,
        &case.set,
        &case.costs,
        &case.catalog,
        &t,
        &Budget::default(),
    );
    assert_eq!(proposed(&advice), vec!["t_relative_idx", "t_absolute_idx"]);
}

#[test]
fn a_write_heavy_table_with_a_rare_query_gets_no_index_and_a_read_heavy_one_does() {
    let mut case = Case::new(vec![cand("busy", "a"), cand("quiet", "a")], &[MB, MB]);
    // One hour of statistics: busy took 100 rows/s, quiet 100 rows in all.
    case.table("busy", 360_000, 3600.0);
    case.table("quiet", 100, 3600.0);
    // Each query ran 10 times, saving 990 per run: 9,900 over the hour. Busy's writes cost
    // 10 × 360,000 = 3.6 M; quiet's 1,000.
    case.statement(10, 1000.0, &[(&[0], 10.0, &[0])]);
    case.statement(10, 1000.0, &[(&[1], 10.0, &[1])]);
    let advice = case.select(Budget::default());
    assert_eq!(proposed(&advice), vec!["quiet_a_idx"]);
    assert_eq!(
        reason_of(&advice, &case.set.candidates[0]),
        &Reason::WriteCost {
            writes_per_second: 100.0
        }
    );
    assert_eq!(
        left_alone(&advice, "f0"),
        &Reason::WriteCost {
            writes_per_second: 100.0
        }
    );
    // A statement from the command line has no call rate: no write penalty.
    let mut case2 = case;
    case2.queries[0].source = Source::Argument;
    let advice = case2.select(Budget::default());
    assert_eq!(proposed(&advice).len(), 2);
}

#[test]
fn a_pair_needed_together_for_a_bitmap_or_is_chosen_together() {
    let mut case = Case::new(vec![cand("t", "a"), cand("t", "b")], &[MB, MB]);
    case.statement(
        5,
        1000.0,
        &[
            (&[0], 1000.0, &[]),
            (&[1], 1000.0, &[]),
            (&[0, 1], 40.0, &[0, 1]),
        ],
    );
    let advice = case.select(Budget::default());
    let mut names = proposed(&advice);
    names.sort();
    assert_eq!(names, vec!["t_a_idx", "t_b_idx"]);
    for s in &advice.suggestions {
        assert_eq!(s.helps.len(), 1);
        assert_eq!(s.helps[0].cost_after, 40.0);
    }
    // A budget of one index cannot hold the pair: both over budget.
    let advice = case.select(Budget {
        max_indexes: Some(1),
        max_size_bytes: None,
    });
    assert!(advice.suggestions.is_empty());
    assert_eq!(
        reason_of(&advice, &case.set.candidates[0]),
        &Reason::OverBudget
    );
    assert_eq!(left_alone(&advice, "f0"), &Reason::OverBudget);
}

#[test]
fn every_candidate_and_statement_is_accounted_for_exactly_once() {
    let mut case = Case::new(
        vec![
            cand("t", "good"),
            cand("t", "useless"),
            cand("t", "broken"),
            cand("t", "for_failed"),
        ],
        &[MB, MB, MB, MB],
    );
    case.statement(
        3,
        1000.0,
        &[
            (&[0], 10.0, &[0]),
            (&[1], 1000.0, &[]),
            (&[0, 1], 10.0, &[0]),
        ],
    );
    // The candidate HypoPG refused.
    case.costs
        .candidate_failed
        .insert(2, "hypopg: cannot create".into());
    let q = case.statement(1, 500.0, &[]);
    case.set.per_query[q] = vec![2];
    // A statement whose EXPLAIN failed.
    let q = case.statement(1, 0.0, &[]);
    case.costs.base[q] = None;
    case.costs
        .failed
        .insert(q, "relation \"gone\" does not exist".into());
    case.set.per_query[q] = vec![3];
    // A statement the candidate stage set aside, and one with nothing to index.
    let q = case.statement(1, 0.0, &[]);
    case.costs.base[q] = None;
    case.set.left_alone.push((
        q,
        Reason::NotParseable {
            error: "syntax error".into(),
        },
    ));
    case.statement(1, 5000.0, &[]);
    // The candidate stage's structural drop passes through.
    case.set.dropped.push(pgopt::indexes::model::Dropped {
        candidate: cand("t", "id"),
        reason: Reason::AlreadyIndexed {
            index: "t_pkey".into(),
        },
    });

    let advice = case.select(Budget::default());
    assert_eq!(proposed(&advice), vec!["t_good_idx"]);
    assert!(matches!(
        reason_of(&advice, &case.set.candidates[1]),
        Reason::GainBelowThreshold { .. }
    ));
    assert!(matches!(
        reason_of(&advice, &case.set.candidates[2]),
        Reason::ExplainFailed { error } if error.contains("cannot create")
    ));
    assert!(matches!(
        reason_of(&advice, &case.set.candidates[3]),
        Reason::ExplainFailed { error } if error.contains("gone")
    ));
    assert!(matches!(
        reason_of(&advice, &cand("t", "id")),
        Reason::AlreadyIndexed { .. }
    ));
    assert!(matches!(
        left_alone(&advice, "f1"),
        Reason::ExplainFailed { error } if error.contains("cannot create")
    ));
    assert!(matches!(
        left_alone(&advice, "f2"),
        Reason::ExplainFailed { .. }
    ));
    assert!(matches!(
        left_alone(&advice, "f3"),
        Reason::NotParseable { .. }
    ));
    assert!(matches!(left_alone(&advice, "f4"), Reason::NothingToIndex));
    assert_eq!(advice.dropped.len(), 4);
    assert_eq!(advice.left_alone.len(), 4);
}

#[test]
fn a_pair_over_budget_does_not_keep_its_member_from_coming_in_alone() {
    let mut case = Case::new(vec![cand("t", "a"), cand("t", "b")], &[MB, MB]);
    // The pair serves an OR (990 saved); (a) alone serves another statement (900 saved).
    case.statement(
        1,
        1000.0,
        &[
            (&[0], 1000.0, &[]),
            (&[1], 1000.0, &[]),
            (&[0, 1], 10.0, &[0, 1]),
        ],
    );
    case.statement(1, 1000.0, &[(&[0], 100.0, &[0])]);
    let advice = case.select(Budget {
        max_indexes: Some(1),
        max_size_bytes: None,
    });
    assert_eq!(proposed(&advice), vec!["t_a_idx"]);
    assert_eq!(
        reason_of(&advice, &case.set.candidates[1]),
        &Reason::OverBudget
    );
    assert_eq!(left_alone(&advice, "f0"), &Reason::OverBudget);
}

#[test]
fn an_extension_of_a_chosen_index_replaces_it_when_it_cuts_what_is_left() {
    // (a) takes 10,000 to 400 in 1 MB; (a, b) takes it to 20 in 1.3 MB: 1 % of the base but
    // 95 % of what (a) leaves. It is taken, and (a) is pruned: one index, not a redundant pair.
    let mut ab = cand("t", "a");
    ab.keys.push(SortKey {
        key: KeyExpr::column("b"),
        desc: true,
        nulls_first: None,
    });
    let mut case = Case::new(vec![cand("t", "a"), ab], &[MB, MB + MB / 3]);
    case.statement(
        100,
        10_000.0,
        &[
            (&[0], 400.0, &[0]),
            (&[1], 20.0, &[1]),
            (&[0, 1], 20.0, &[1]),
        ],
    );
    let advice = case.select(Budget::default());
    assert_eq!(proposed(&advice), vec!["t_a_b_idx"]);
    assert_eq!(advice.suggestions[0].helps[0].cost_after, 20.0);
    // A different column is no extension: judged against the base, 4 % is too little.
    let mut case = Case::new(vec![cand("t", "a"), cand("t", "c")], &[MB, MB]);
    case.statement(
        100,
        10_000.0,
        &[
            (&[0], 400.0, &[0]),
            (&[1], 9_700.0, &[1]),
            (&[0, 1], 20.0, &[0]),
        ],
    );
    assert_eq!(proposed(&case.select(Budget::default())), vec!["t_a_idx"]);
}
