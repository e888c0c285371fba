//! The index advisor's data, shared by its stages (pure).
//!
//! ```text
//! sources ─▶ [Query] ─▶ shape (pg_query) ─▶ [Shape] ─▶ candidates ─▶ [Candidate]
//!                                                                        │
//!         Catalog (columns, pg_stats, write rates, existing indexes) ────┤
//!                                                                        ▼
//!                                        whatif (HypoPG, I/O) ─▶ Costs ─▶ select ─▶ Advice
//! ```
//!
//! Queries, candidates and costs refer to each other by index into their vectors
//! ([`QueryId`], [`CandidateId`]), so every stage after `whatif` is a pure function of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ident::{Ident, QualifiedName};
use crate::snapshot::{Index, Name};

/// Position of a query in the workload's vector.
pub type QueryId = usize;
/// Position of a candidate in the candidates' vector.
pub type CandidateId = usize;

/// Where a statement of the workload came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// pg_stat_statements (its queryid).
    StatStatements { queryid: i64 },
    /// `--query SQL`.
    Argument,
    /// `--file FILE.sql`, with the 1-based line the statement starts on.
    File { path: String, line: usize },
    /// A server log (log_min_duration_statement or auto_explain), with the 1-based line.
    Log { path: String, line: usize },
}

/// One statement of the workload: every statement of one fingerprint, grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// pg_query's fingerprint (hex), the same for statements that differ only in constants;
    /// empty when the statement does not parse.
    pub fingerprint: String,
    /// One representative text (with $n parameters when it came from pg_stat_statements).
    pub text: String,
    /// How many times it ran (1 for a statement given on the command line or in a file).
    pub calls: i64,
    /// Mean execution time in milliseconds, when the source tells it.
    pub mean_ms: Option<f64>,
    pub source: Source,
}

impl Query {
    /// Its weight in the workload: calls × mean time where the time is known, else calls.
    /// The selection multiplies each plan cost by it (the cost of one run stays the planner's).
    pub fn weight(&self) -> f64 {
        let calls = self.calls.max(1) as f64;
        match self.mean_ms {
            Some(ms) if ms > 0.0 => calls * ms,
            _ => calls,
        }
    }

    /// Whether the text has `$n` parameters (costed with a generic plan).
    pub fn has_parameters(&self) -> bool {
        let b = self.text.as_bytes();
        b.windows(2).any(|w| w[0] == b'$' && w[1].is_ascii_digit())
    }
}

/// Planner statistics of one column (pg_stats), as far as the advisor uses them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    pub null_frac: f64,
    pub avg_width: i32,
    /// pg_stats.n_distinct: > 0 a count, < 0 minus the fraction of rows (-1: unique).
    pub n_distinct: f64,
    /// most_common_vals as text, in the order of `most_common_freqs`.
    pub most_common_vals: Vec<String>,
    pub most_common_freqs: Vec<f64>,
    pub correlation: Option<f64>,
    /// histogram_bounds as text, in the column type's order (empty when the column has
    /// none: every value is among the most common ones, or the type has no ordering).
    #[serde(default)]
    pub histogram_bounds: Vec<String>,
}

impl ColumnStats {
    /// The number of distinct values among `rows` rows (n_distinct resolved).
    pub fn distinct(&self, rows: f64) -> f64 {
        if self.n_distinct < 0.0 {
            (-self.n_distinct * rows).max(1.0)
        } else {
            self.n_distinct.max(1.0)
        }
    }

    /// The share of rows one equality on this column is expected to keep, for a value that
    /// is not among the most common ones (the planner's own estimate).
    pub fn equality_selectivity(&self, rows: f64) -> f64 {
        let mcv_freq: f64 = self.most_common_freqs.iter().sum();
        let d = self.distinct(rows);
        let rest = d - self.most_common_vals.len() as f64;
        if rest >= 1.0 {
            ((1.0 - mcv_freq - self.null_frac).max(0.0) / rest).clamp(0.0, 1.0)
        } else {
            self.most_common_freqs
                .iter()
                .copied()
                .fold(f64::NAN, f64::min)
                .clamp(0.0, 1.0)
        }
    }

    /// The frequency of `value` among the most common values, when it is one.
    pub fn frequency_of(&self, value: &str) -> Option<f64> {
        self.most_common_vals
            .iter()
            .position(|v| v == value)
            .and_then(|i| self.most_common_freqs.get(i).copied())
    }
}

/// One column of a table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: Name,
    pub attnum: i16,
    /// format_type of the column (`integer`, `timestamp with time zone`, `text`).
    pub type_name: String,
    pub not_null: bool,
    /// None when the table was never analyzed (or the role cannot read pg_stats).
    pub stats: Option<ColumnStats>,
    /// What its values sort by: the LC_COLLATE of its libc collation, or of the database
    /// (datcollate) for the default one (`C`, `POSIX`, `en_US.UTF-8`); an ICU collation's
    /// name. None when its type has no collation, or not known.
    #[serde(default)]
    pub collation: Option<String>,
}

impl Column {
    /// Whether its values sort byte by byte (the `C` or `POSIX` collation), so that a plain
    /// btree serves `LIKE 'prefix%'`; otherwise only a `text_pattern_ops` one does
    /// (<https://www.postgresql.org/docs/current/indexes-opclass.html>).
    pub fn sorts_bytewise(&self) -> bool {
        matches!(self.collation.as_deref(), Some("C" | "POSIX"))
    }

    /// The btree operator class that serves `LIKE 'prefix%'` on this column whatever its
    /// collation, by its type; None for a type without one.
    pub fn pattern_opclass(&self) -> Option<&'static str> {
        let t = self.type_name.as_str();
        if t == "text" {
            Some("text_pattern_ops")
        } else if t == "character varying" || t.starts_with("character varying(") {
            Some("varchar_pattern_ops")
        } else if t == "character" || t.starts_with("character(") {
            Some("bpchar_pattern_ops")
        } else {
            None
        }
    }
}

/// One table the workload reads, with what the advisor judges candidates by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub schema: Name,
    pub name: Name,
    /// pg_class.reltuples (-1 when never analyzed or vacuumed).
    pub reltuples: f64,
    pub relpages: i64,
    /// pg_total_relation_size.
    pub total_bytes: i64,
    /// Rows inserted, updated (HOT ones included) and deleted since the statistics reset
    /// (pg_stat_user_tables), and how long that window is: the write-cost penalty's rates.
    pub n_tup_ins: i64,
    pub n_tup_upd: i64,
    pub n_tup_hot_upd: i64,
    pub n_tup_del: i64,
    pub stats_window_seconds: Option<f64>,
    pub columns: Vec<Column>,
}

impl Table {
    pub fn qualified(&self) -> QualifiedName {
        QualifiedName::new(&self.schema, &self.name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Writes per second over the statistics window, when there is one.
    pub fn writes_per_second(&self) -> Option<f64> {
        let w = self.stats_window_seconds.filter(|w| *w > 0.0)?;
        Some((self.n_tup_ins + self.n_tup_upd + self.n_tup_del) as f64 / w)
    }
}

/// The part of the catalog the advisor works against: the tables (with columns and their
/// statistics) and every existing index, and the search_path to resolve unqualified names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub tables: Vec<Table>,
    pub indexes: Vec<Index>,
    /// The schemas an unqualified table name is looked up in, in order.
    pub search_path: Vec<Name>,
}

impl Catalog {
    /// The table a reference names: qualified, or the first schema of the search path that
    /// has it.
    pub fn resolve(&self, schema: Option<&str>, name: &str) -> Option<&Table> {
        match schema {
            Some(s) => self.tables.iter().find(|t| t.schema == s && t.name == name),
            None => self.search_path.iter().find_map(|s| {
                self.tables
                    .iter()
                    .find(|t| t.schema == s.as_str() && t.name == name)
            }),
        }
    }

    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.resolve(Some(schema), name)
    }

    /// The valid indexes of a table.
    pub fn indexes_of<'a>(
        &'a self,
        schema: &'a str,
        table: &'a str,
    ) -> impl Iterator<Item = &'a Index> {
        self.indexes
            .iter()
            .filter(move |i| i.schema == schema && i.table == table && i.is_valid)
    }
}

/// What a key of an index or a predicate is over: a column, or an expression of columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyExpr {
    Column {
        name: Name,
    },
    /// An expression such as `lower(email)`: its SQL as pg_query deparses it (names quoted
    /// where they need it), and the columns it reads.
    Expression {
        sql: String,
        columns: Vec<Name>,
    },
}

impl KeyExpr {
    pub fn column(name: impl Into<Name>) -> KeyExpr {
        KeyExpr::Column { name: name.into() }
    }

    /// The text of this key in CREATE INDEX: a quoted column, or the expression in
    /// parentheses.
    pub fn sql(&self) -> String {
        match self {
            KeyExpr::Column { name } => Ident::new(name).to_string(),
            KeyExpr::Expression { sql, .. } => format!("({sql})"),
        }
    }

    /// The column, when the key is a plain column.
    pub fn as_column(&self) -> Option<&str> {
        match self {
            KeyExpr::Column { name } => Some(name),
            KeyExpr::Expression { .. } => None,
        }
    }
}

/// What a predicate does to its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PredicateOp {
    /// `= value` (or `= $n`).
    Eq,
    /// `IN (...)` / `= ANY(...)` with `values` elements (None: an array parameter).
    In {
        values: Option<usize>,
    },
    /// `<`, `<=`, `>`, `>=`, BETWEEN: one side bounded or both.
    Range {
        lower: bool,
        upper: bool,
    },
    IsNull,
    IsNotNull,
    /// A boolean column on its own (`WHERE is_active`) or with NOT.
    Bool {
        value: bool,
    },
    /// `LIKE 'prefix%'` (an index with text_pattern_ops or the C collation serves it).
    LikePrefix,
    /// A LIKE or ILIKE no btree searches, and why: read, not searched (as [`Other`]), kept
    /// apart so that the advice can say why the statement gets nothing for it.
    ///
    /// [`Other`]: PredicateOp::Other
    Pattern {
        why: PatternLimit,
    },
    /// `<>`, a LIKE with a leading wildcard, a function an index cannot serve: read, not
    /// searched.
    Other,
}

impl PredicateOp {
    /// Whether a btree's leading key serves it as an equality (the column order puts these
    /// first).
    pub fn is_equality(&self) -> bool {
        matches!(
            self,
            PredicateOp::Eq
                | PredicateOp::In { .. }
                | PredicateOp::IsNull
                | PredicateOp::Bool { .. }
        )
    }

    /// Whether an index searches it at all (an equality or a range): not for [`Other`] and
    /// [`Pattern`].
    ///
    /// [`Other`]: PredicateOp::Other
    /// [`Pattern`]: PredicateOp::Pattern
    pub fn searches(&self) -> bool {
        self.is_equality() || self.is_range()
    }

    /// Whether a btree serves it as a range (one per index, after the equalities).
    pub fn is_range(&self) -> bool {
        matches!(
            self,
            PredicateOp::Range { .. } | PredicateOp::LikePrefix | PredicateOp::IsNotNull
        )
    }
}

/// Why a LIKE or ILIKE condition gets no btree candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternLimit {
    /// ILIKE: case-insensitive, no btree order serves it (an index on `lower(col)` with
    /// `lower(col) LIKE lower('abc%')` would).
    CaseInsensitive,
    /// The pattern is a parameter (`LIKE $1`): a generic plan does not know its prefix, so
    /// it cannot search an index with it.
    Parameter,
    /// A prefix on a column whose collation is not C and whose type has no pattern operator
    /// class (text_pattern_ops and its varchar/bpchar twins).
    NoPatternOpclass,
}

/// One condition on one table of a statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    pub key: KeyExpr,
    pub op: PredicateOp,
    /// The constant compared with, as SQL text, when it is a literal (`'pending'`, `true`);
    /// None for a parameter, a column or an expression. A partial index is only proposed on
    /// constants.
    pub constant: Option<String>,
}

/// One key of an ORDER BY (or of an index).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SortKey {
    pub key: KeyExpr,
    pub desc: bool,
    /// NULLS FIRST/LAST when the statement says it and it differs from the default for the
    /// direction (NULLS LAST for ASC, NULLS FIRST for DESC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulls_first: Option<bool>,
}

impl SortKey {
    /// What follows the key in SQL: ` DESC`, and NULLS FIRST/LAST where it differs from the
    /// direction's default; empty for a plain ascending key.
    pub fn order_sql(&self) -> &'static str {
        match (self.desc, self.nulls_first) {
            (false, Some(true)) => " NULLS FIRST",
            (true, Some(false)) => " DESC NULLS LAST",
            (true, _) => " DESC",
            (false, _) => "",
        }
    }
}

/// How one table is used by one statement (each reference to it separately: a self-join has
/// two).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableAccess {
    pub schema: Name,
    pub table: Name,
    /// The alias it has in the statement, when any.
    pub alias: Option<Name>,
    /// Conditions ANDed in the WHERE clause (and the ON clause of an inner join).
    pub predicates: Vec<Predicate>,
    /// Conditions ORed across columns of this table: each inner vector one alternative (a
    /// BitmapOr of one index per alternative can serve it).
    pub or_groups: Vec<Vec<Predicate>>,
    /// Columns of this table equated with a column of another table (join keys).
    pub join_keys: Vec<Name>,
    /// ORDER BY keys, in order, when all of them are of this table.
    pub order_by: Vec<SortKey>,
    pub group_by: Vec<KeyExpr>,
    /// LIMIT of the statement (or of the subquery) this access is in, when a constant.
    pub limit: Option<i64>,
    /// Every column of this table the statement reads (select list, conditions, sort,
    /// grouping, join keys). Empty with `reads_all` for `SELECT *` or `t.*`.
    pub reads: Vec<Name>,
    pub reads_all: bool,
}

/// What pg_query found in one statement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Every table reference that resolved to a catalog table.
    pub accesses: Vec<TableAccess>,
    /// Referenced tables that are not in the catalog (dropped, or a view or CTE name that
    /// did not resolve), qualified as written.
    pub unknown_tables: Vec<String>,
    /// The statement only reads (a SELECT without FOR UPDATE/SHARE, no data-modifying CTE).
    pub read_only: bool,
    /// What each `$n` parameter the statement compares with a key, or uses as LIMIT or
    /// OFFSET, stands for (a parameter used twice has two entries); what representative
    /// values are picked from when the statement is timed.
    #[serde(default)]
    pub params: Vec<ParamUse>,
}

/// One use of a `$n` parameter in a statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamUse {
    /// The `n` of `$n`.
    pub number: u32,
    pub role: ParamRole,
    /// The table and key it is compared with; None for LIMIT and OFFSET.
    pub key: Option<ParamKey>,
}

/// The table key a parameter is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamKey {
    pub schema: Name,
    pub table: Name,
    pub key: KeyExpr,
}

/// How a parameter is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ParamRole {
    /// `key = $n`, and any other comparison that is no range (`<>`, IS DISTINCT FROM).
    Eq,
    /// The `position`-th (0-based) element of `key IN (.., $n, ..)`.
    InItem {
        position: usize,
    },
    /// `key = ANY($n)`: an array of values.
    AnyArray,
    /// `key > $n` / `key >= $n`: a lower bound.
    Lower,
    /// `key < $n` / `key <= $n`: an upper bound.
    Upper,
    /// `key BETWEEN $n AND ..`.
    BetweenLow,
    /// `key BETWEEN .. AND $n`.
    BetweenHigh,
    /// `key LIKE $n` (and ILIKE): a pattern.
    Pattern,
    Limit,
    Offset,
}

/// A btree (or other) index the advisor may propose.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Candidate {
    pub schema: Name,
    pub table: Name,
    pub keys: Vec<SortKey>,
    /// INCLUDE columns (btree only).
    pub include: Vec<Name>,
    /// The partial index's predicate as SQL text (names quoted), or None.
    #[serde(rename = "where")]
    pub predicate: Option<String>,
    /// The access method (`btree`).
    pub method: Name,
    /// The operator class of each key, by position, where it is not the type's default
    /// (`text_pattern_ops` for a LIKE prefix on a column whose collation is not C); empty
    /// when every key has the default. Set through [`Candidate::set_opclass`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opclasses: Vec<Option<Name>>,
}

impl Candidate {
    pub fn btree(schema: impl Into<Name>, table: impl Into<Name>, keys: Vec<SortKey>) -> Candidate {
        Candidate {
            schema: schema.into(),
            table: table.into(),
            keys,
            include: Vec::new(),
            predicate: None,
            method: "btree".into(),
            opclasses: Vec::new(),
        }
    }

    /// The operator class of key `i`, when it is not the default.
    pub fn opclass(&self, i: usize) -> Option<&Name> {
        self.opclasses.get(i).and_then(Option::as_ref)
    }

    /// Gives key `i` an operator class (None: the default), keeping `opclasses` empty when
    /// every key has the default so that equal candidates compare equal.
    pub fn set_opclass(&mut self, i: usize, opclass: Option<Name>) {
        if opclass.is_some() && self.opclasses.len() <= i {
            self.opclasses.resize(i + 1, None);
        }
        if let Some(slot) = self.opclasses.get_mut(i) {
            *slot = opclass;
        }
        while self.opclasses.last().is_some_and(Option::is_none) {
            self.opclasses.pop();
        }
    }

    pub fn table_name(&self) -> QualifiedName {
        QualifiedName::new(&self.schema, &self.table)
    }

    /// A name for the index: `table_col1_col2_idx` cut to PostgreSQL's 63 bytes, with a
    /// short hash of the whole definition when cut.
    pub fn index_name(&self) -> String {
        let mut parts = vec![self.table.to_string()];
        for k in &self.keys {
            match &k.key {
                KeyExpr::Column { name } => parts.push(name.to_string()),
                KeyExpr::Expression { columns, .. } => {
                    parts.extend(columns.iter().map(|c| c.to_string()))
                }
            }
        }
        let mut name = parts.join("_");
        if !self.opclasses.is_empty() {
            name.push_str("_pattern");
        }
        if self.predicate.is_some() {
            name.push_str("_part");
        }
        name.push_str("_idx");
        if name.len() > 63 {
            let hash = crate::hash::fnv1a64(self.key_sql().as_bytes());
            let mut cut = 63 - 9;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
            name.push_str(&format!("_{:08x}", hash as u32));
        }
        name
    }

    /// The part of the DDL after the table: `USING btree (a, b DESC) INCLUDE (c) WHERE ...`.
    pub fn key_sql(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut s = k.key.sql();
                if let Some(opclass) = self.opclass(i) {
                    s.push(' ');
                    s.push_str(&Ident::new(opclass).to_string());
                }
                s.push_str(k.order_sql());
                s
            })
            .collect();
        let mut sql = format!("USING {} ({})", Ident::new(&self.method), keys.join(", "));
        if !self.include.is_empty() {
            let inc: Vec<String> = self
                .include
                .iter()
                .map(|c| Ident::new(c).to_string())
                .collect();
            sql.push_str(&format!(" INCLUDE ({})", inc.join(", ")));
        }
        if let Some(p) = &self.predicate {
            sql.push_str(&format!(" WHERE {p}"));
        }
        sql
    }

    /// `CREATE INDEX [CONCURRENTLY] name ON schema.table USING ...`.
    pub fn ddl(&self, name: &str, concurrently: bool) -> String {
        format!(
            "CREATE INDEX {}{} ON {} {}",
            if concurrently { "CONCURRENTLY " } else { "" },
            Ident::new(name),
            self.table_name(),
            self.key_sql()
        )
    }
}

/// What the candidate stage hands on: the candidates worth costing, which of them each
/// query may use, and what it set aside structurally (with the reason).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CandidateSet {
    /// Distinct candidates (no two equal).
    pub candidates: Vec<Candidate>,
    /// For each query (by [`QueryId`]), the candidates that may serve it.
    pub per_query: Vec<Vec<CandidateId>>,
    /// Candidates considered and set aside before costing (already indexed, low
    /// selectivity, ...).
    pub dropped: Vec<Dropped>,
    /// Queries that get no candidate at all, with the reason (not parseable, tiny table,
    /// nothing to index, ...).
    pub left_alone: Vec<(QueryId, Reason)>,
}

/// Why a statement gets no suggestion, or a candidate is not proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// pg_query could not parse it.
    NotParseable { error: String },
    /// Not a statement an index helps (DDL, a utility command, a SELECT without a table).
    NotIndexable,
    /// A table it names is not in the catalog.
    UnknownTable { table: String },
    /// EXPLAIN failed or ran past its timeout.
    ExplainFailed { error: String },
    /// Every table it reads is smaller than the threshold.
    TinyTable {
        table: String,
        rows: f64,
        pages: i64,
    },
    /// An existing index already serves it (same leading columns).
    AlreadyIndexed { index: String },
    /// Its plan costs less than the minimum worth improving.
    LowInitialCost { cost: f64 },
    /// The column keeps too many rows per value for an index to pay.
    LowSelectivity { column: String, rows_per_value: f64 },
    /// The best index saves less than the minimum gain (absolute or relative).
    GainBelowThreshold { gain: f64, relative: f64 },
    /// The budget (`--max-indexes`, `--max-size`) was spent on indexes that gain more.
    OverBudget,
    /// The table's writes cost more than the index saves the reads.
    WriteCost { writes_per_second: f64 },
    /// No condition, join key or sort an index could serve.
    NothingToIndex,
    /// Its only condition on the column is a LIKE or ILIKE no btree searches.
    UnsearchablePattern { column: String, why: PatternLimit },
}

/// The what-if costs of the workload: the plan cost of each query with no new index and
/// with sets of candidates, and each candidate's estimated size. Filled by the I/O module
/// (HypoPG), read by the pure selection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// Plan cost of each query as the server is (None: EXPLAIN failed, see `failed`).
    pub base: Vec<Option<f64>>,
    /// The EXPLAIN error of each query that failed.
    pub failed: BTreeMap<QueryId, String>,
    /// Plan cost of a query with a set of hypothetical candidates (sorted, deduplicated),
    /// and which of them its plan used.
    pub with: BTreeMap<(QueryId, Vec<CandidateId>), Costed>,
    /// Estimated size in bytes of each candidate (hypopg_relation_size), by candidate.
    pub size_bytes: BTreeMap<CandidateId, i64>,
    /// Candidates the server would not make (HypoPG or the trial build refused the DDL),
    /// with its error: never costed, never proposed.
    #[serde(default)]
    pub candidate_failed: BTreeMap<CandidateId, String>,
}

/// One what-if plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Costed {
    pub cost: f64,
    /// The candidates the plan used (a subset of the set it was costed with).
    pub used: Vec<CandidateId>,
}

impl Costs {
    /// The best known cost of `query` when the indexes `chosen` exist: the least cost of a
    /// costed set that `chosen` contains, or the base cost. None when the query has no base
    /// cost.
    pub fn estimate(&self, query: QueryId, chosen: &[CandidateId]) -> Option<f64> {
        let base = (*self.base.get(query)?)?;
        let best = self
            .with
            .range((query, Vec::new())..(query + 1, Vec::new()))
            .filter(|((_, set), _)| set.iter().all(|c| chosen.contains(c)))
            .map(|(_, c)| c.cost)
            .fold(base, f64::min);
        Some(best)
    }
}

/// One statement an index helps, with its costs before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Helped {
    pub fingerprint: String,
    pub text: String,
    pub calls: i64,
    pub cost_before: f64,
    pub cost_after: f64,
}

/// One proposed index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub candidate: Candidate,
    pub name: String,
    pub ddl: String,
    pub size_bytes: i64,
    /// The weighted workload cost it saves (after the indexes chosen before it).
    pub benefit: f64,
    pub helps: Vec<Helped>,
}

/// A candidate that was considered and not proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    pub candidate: Candidate,
    #[serde(flatten)]
    pub reason: Reason,
}

/// A statement left without a suggestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftAlone {
    pub fingerprint: String,
    pub text: String,
    pub calls: i64,
    #[serde(flatten)]
    pub reason: Reason,
}

/// An existing index analyze's diagnostics say to drop (unused, duplicate, redundant or
/// invalid): shown with the advice, dropped only with `--apply --drop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropSuggestion {
    /// `schema.index`, quoted as SQL.
    pub index: String,
    /// The analyze rule that names it (`unused_index`, `duplicate_index`, ...).
    pub rule: String,
    /// The finding's sentence: why it can go.
    pub message: String,
    /// The space dropping it returns.
    pub size_bytes: i64,
    pub ddl: String,
}

/// The advisor's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    pub suggestions: Vec<Suggestion>,
    /// Existing indexes to drop (filled from analyze's findings, not by the selection).
    #[serde(default)]
    pub drops: Vec<DropSuggestion>,
    pub dropped: Vec<Dropped>,
    pub left_alone: Vec<LeftAlone>,
    /// The weighted plan cost of the workload as it is, and with every suggestion.
    pub workload_cost_before: f64,
    pub workload_cost_after: f64,
}

/// The measured time of one statement (EXPLAIN ANALYZE), or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub query: QueryId,
    /// Execution time in milliseconds ("Execution Time"), the best of a few runs.
    pub ms: Option<f64>,
    pub note: Option<String>,
    /// The representative values the `$n` parameters were run with (`$1 = 'active'`), in
    /// parameter order; empty for a statement without parameters.
    #[serde(default)]
    pub values: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_quotes_hostile_names_and_renders_every_part() {
        let mut c = Candidate::btree(
            "app",
            "Order\"s",
            vec![
                SortKey {
                    key: KeyExpr::column("tenant id"),
                    desc: false,
                    nulls_first: None,
                },
                SortKey {
                    key: KeyExpr::column("created_at"),
                    desc: true,
                    nulls_first: None,
                },
            ],
        );
        c.include.push("total".into());
        c.predicate = Some("\"deleted_at\" IS NULL".into());
        assert_eq!(
            c.ddl("x", true),
            "CREATE INDEX CONCURRENTLY \"x\" ON \"app\".\"Order\"\"s\" USING \"btree\" \
             (\"tenant id\", \"created_at\" DESC) INCLUDE (\"total\") WHERE \"deleted_at\" IS NULL"
        );
        assert_eq!(c.index_name(), "Order\"s_tenant id_created_at_part_idx");
    }

    #[test]
    fn opclass_is_quoted_in_the_ddl_named_and_kept_empty_when_all_default() {
        let mut c = Candidate::btree(
            "s",
            "people",
            vec![
                SortKey {
                    key: KeyExpr::column("team"),
                    desc: false,
                    nulls_first: None,
                },
                SortKey {
                    key: KeyExpr::column("na\"me"),
                    desc: true,
                    nulls_first: None,
                },
            ],
        );
        let plain = c.clone();
        c.set_opclass(0, None);
        assert_eq!(c, plain, "no class given: equal to the plain candidate");
        c.set_opclass(1, Some("text_pattern_ops".into()));
        assert_eq!(c.opclasses, vec![None, Some("text_pattern_ops".into())]);
        assert_eq!(
            c.key_sql(),
            "USING \"btree\" (\"team\", \"na\"\"me\" \"text_pattern_ops\" DESC)"
        );
        assert_eq!(c.index_name(), "people_team_na\"me_pattern_idx");
        assert_ne!(c.index_name(), plain.index_name());
        c.set_opclass(1, None);
        assert_eq!(c, plain, "back to the default: equal again");
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("opclasses").is_none(), "{json}");
        let old: Candidate = serde_json::from_value(json).unwrap();
        assert_eq!(
            old, plain,
            "a candidate saved without opclasses still loads"
        );
    }

    #[test]
    fn pattern_opclass_by_type_and_bytewise_collations() {
        let col = |type_name: &str, collation: Option<&str>| Column {
            type_name: type_name.into(),
            collation: collation.map(str::to_string),
            ..Column::default()
        };
        assert_eq!(
            col("text", None).pattern_opclass(),
            Some("text_pattern_ops")
        );
        assert_eq!(
            col("character varying(40)", None).pattern_opclass(),
            Some("varchar_pattern_ops")
        );
        assert_eq!(
            col("character(3)", None).pattern_opclass(),
            Some("bpchar_pattern_ops")
        );
        assert_eq!(col("citext", None).pattern_opclass(), None);
        assert!(col("text", Some("C")).sorts_bytewise());
        assert!(col("text", Some("POSIX")).sorts_bytewise());
        assert!(!col("text", Some("en_US.UTF-8")).sorts_bytewise());
        assert!(!col("text", Some("und-x-icu")).sorts_bytewise());
        assert!(
            !col("text", None).sorts_bytewise(),
            "unknown: not assumed C"
        );
    }

    #[test]
    fn sort_keys_write_nulls_only_where_they_differ_from_the_default() {
        let k = |desc, nulls_first| SortKey {
            key: KeyExpr::column("a"),
            desc,
            nulls_first,
        };
        assert_eq!(k(false, None).order_sql(), "");
        assert_eq!(k(false, Some(false)).order_sql(), "");
        assert_eq!(k(false, Some(true)).order_sql(), " NULLS FIRST");
        assert_eq!(k(true, Some(true)).order_sql(), " DESC");
        assert_eq!(k(true, Some(false)).order_sql(), " DESC NULLS LAST");
    }

    #[test]
    fn long_index_names_are_cut_to_63_bytes_with_a_hash() {
        let c = Candidate::btree(
            "s",
            "t".repeat(60),
            vec![SortKey {
                key: KeyExpr::column("c".repeat(30)),
                desc: false,
                nulls_first: None,
            }],
        );
        let name = c.index_name();
        assert_eq!(name.len(), 63);
        let mut other = c.clone();
        other.keys[0].desc = true;
        assert_ne!(other.index_name(), name);
    }

    #[test]
    fn estimate_takes_the_best_costed_subset_of_the_chosen_set() {
        let mut costs = Costs {
            base: vec![Some(100.0), None],
            ..Costs::default()
        };
        costs.with.insert(
            (0, vec![1]),
            Costed {
                cost: 40.0,
                used: vec![1],
            },
        );
        costs.with.insert(
            (0, vec![1, 2]),
            Costed {
                cost: 10.0,
                used: vec![1, 2],
            },
        );
        costs.with.insert(
            (1, vec![1]),
            Costed {
                cost: 1.0,
                used: vec![1],
            },
        );
        assert_eq!(costs.estimate(0, &[]), Some(100.0));
        assert_eq!(costs.estimate(0, &[1]), Some(40.0));
        assert_eq!(costs.estimate(0, &[2, 1]), Some(10.0));
        assert_eq!(costs.estimate(0, &[2]), Some(100.0));
        assert_eq!(costs.estimate(1, &[1]), None);
    }

    #[test]
    fn equality_selectivity_uses_the_rest_after_the_common_values() {
        let s = ColumnStats {
            null_frac: 0.0,
            n_distinct: 5.0,
            most_common_vals: vec!["a".into(), "b".into()],
            most_common_freqs: vec![0.5, 0.3],
            ..ColumnStats::default()
        };
        assert!((s.equality_selectivity(1000.0) - 0.2 / 3.0).abs() < 1e-9);
        assert_eq!(s.frequency_of("b"), Some(0.3));
        let unique = ColumnStats {
            n_distinct: -1.0,
            ..ColumnStats::default()
        };
        assert!((unique.equality_selectivity(1000.0) - 0.001).abs() < 1e-9);
    }
}
