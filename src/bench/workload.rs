//! What a benchmark runs: weighted scripts. One execution of a script is one transaction, as
//! in pgbench: its commands (`\set`, `\sleep`, SQL statements) run in order on one
//! connection, held from the first command to the last.
//!
//! Scripts come from pgbench-style files and built-ins (src/bench/file.rs) or from
//! parameterised operations with their own generators (a workload another module provides,
//! and `select1`), each of which becomes a one-statement script with the operation's weight.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::Rng;
use tokio_postgres::types::{ToSql, Type};

use super::expr::{Expr, Value};

/// One bind parameter value.
pub type Param = Box<dyn ToSql + Send + Sync>;

/// Makes the parameters of one execution.
pub type ParamGen = Arc<dyn Fn(&mut SmallRng) -> Vec<Param> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Read,
    Write,
}

/// A parameterised statement with its own generator (the shape of a workload a domain provides).
#[derive(Clone)]
pub struct Operation {
    /// Stable name, e.g. `authenticate_by_email`; results are reported per name.
    pub name: String,
    pub kind: OpKind,
    /// One statement with `$1`, `$2`, ... placeholders.
    pub sql: String,
    /// The types of the placeholders, when they must be fixed at prepare time (empty: let the
    /// server infer them).
    pub param_types: Vec<Type>,
    /// Relative frequency within the workload (0 = never picked).
    pub weight: u32,
    pub params: ParamGen,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("weight", &self.weight)
            .field("sql", &self.sql)
            .finish_non_exhaustive()
    }
}

/// Where a statement's parameter values come from.
#[derive(Clone)]
pub enum Binds {
    /// Script variables (slots), one per `$n`, sent as text for the server to type.
    Vars(Vec<usize>),
    /// An operation's generator.
    Generated(ParamGen),
}

/// What a statement does to the transaction block, for the clean-up after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// BEGIN / START TRANSACTION.
    Opens,
    /// COMMIT / END / ROLLBACK / ABORT.
    Closes,
    Other,
}

impl Block {
    pub fn of(sql: &str) -> Block {
        let words: Vec<String> = sql
            .split_whitespace()
            .take(2)
            .map(|w| w.trim_end_matches(';').to_ascii_lowercase())
            .collect();
        match words.first().map(String::as_str) {
            Some("begin") | Some("start") => Block::Opens,
            Some("rollback") if words.get(1).is_some_and(|w| w == "to") => Block::Other,
            Some("commit") | Some("end") | Some("rollback") | Some("abort") => Block::Closes,
            _ => Block::Other,
        }
    }
}

#[derive(Clone)]
pub struct Statement {
    /// `-- name:` of the file, `<script>:<n>`, or the operation's name.
    pub name: String,
    /// The SQL with `$n` placeholders.
    pub sql: String,
    /// Line in the script file where it starts (1-based; 0 when not from a file).
    pub line: usize,
    /// Placeholder types fixed at prepare time (empty: the server infers them).
    pub param_types: Vec<Type>,
    pub binds: Binds,
    pub block: Block,
}

impl std::fmt::Debug for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statement")
            .field("name", &self.name)
            .field("sql", &self.sql)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

/// How long a `\sleep` lasts.
#[derive(Debug, Clone, PartialEq)]
pub enum SleepFor {
    Micros(u64),
    /// A variable's value times a unit in microseconds.
    Var(usize, u64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `\set`: evaluate into a variable slot.
    Set(usize, Expr),
    Sleep(SleepFor),
    /// Run statement i.
    Sql(usize),
}

/// The first variable slots of every script, set by the runner (pgbench's automatic
/// variables).
pub const AUTOMATIC_VARS: [&str; 4] = ["client_id", "scale", "default_seed", "random_seed"];
pub const SLOT_CLIENT_ID: usize = 0;
pub const SLOT_SCALE: usize = 1;
pub const SLOT_DEFAULT_SEED: usize = 2;
pub const SLOT_RANDOM_SEED: usize = 3;

#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    /// Relative frequency (0 = never picked).
    pub weight: u32,
    pub kind: OpKind,
    /// Variable names by slot: the automatic ones, `--define`s, then `\set` ones.
    pub vars: Vec<String>,
    /// The value of each slot when a client starts (Null for `\set` ones).
    pub initial: Vec<Value>,
    pub commands: Vec<Command>,
    pub statements: Vec<Statement>,
    /// Whether `:scale` must come from pgbench_branches when --scale is not given (pgbench's
    /// built-ins).
    pub detects_scale: bool,
}

impl Script {
    /// An operation as a one-statement script.
    pub fn from_operation(op: Operation) -> Script {
        let statement = Statement {
            name: op.name.clone(),
            block: Block::of(&op.sql),
            sql: op.sql,
            line: 0,
            param_types: op.param_types,
            binds: Binds::Generated(op.params),
        };
        Script {
            name: op.name,
            weight: op.weight,
            kind: op.kind,
            vars: AUTOMATIC_VARS.iter().map(|s| s.to_string()).collect(),
            initial: vec![Value::Int(0), Value::Int(1), Value::Int(0), Value::Int(0)],
            commands: vec![Command::Sql(0)],
            statements: vec![statement],
            detects_scale: false,
        }
    }

    pub fn uses_variable(&self, slot: usize) -> bool {
        fn in_expr(e: &Expr, slot: usize) -> bool {
            match e {
                Expr::Var(i) => *i == slot,
                Expr::Const(_) => false,
                Expr::Neg(x) | Expr::Not(x) | Expr::BitNot(x) | Expr::Is(x, _, _) => {
                    in_expr(x, slot)
                }
                Expr::Bin(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                    in_expr(a, slot) || in_expr(b, slot)
                }
                Expr::Case(arms, other) => {
                    arms.iter()
                        .any(|(c, t)| in_expr(c, slot) || in_expr(t, slot))
                        || other.as_ref().is_some_and(|o| in_expr(o, slot))
                }
                Expr::Call(_, args) => args.iter().any(|a| in_expr(a, slot)),
            }
        }
        self.commands.iter().any(|c| match c {
            Command::Set(_, e) => in_expr(e, slot),
            Command::Sleep(SleepFor::Var(v, _)) => *v == slot,
            _ => false,
        }) || self
            .statements
            .iter()
            .any(|s| matches!(&s.binds, Binds::Vars(v) if v.contains(&slot)))
    }
}

/// A set of scripts picked by weight.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub scripts: Vec<Script>,
    /// Running sum of the weights, for picking.
    cumulative: Vec<u64>,
}

fn no_weight() -> crate::Error {
    crate::Error::BadInput("the workload has no script with a weight above zero".into())
}

impl Workload {
    /// Operations, each a one-statement script. Fails when there is none or every weight is
    /// zero.
    pub fn new(name: impl Into<String>, ops: Vec<Operation>) -> crate::Result<Self> {
        Self::from_scripts(name, ops.into_iter().map(Script::from_operation).collect())
    }

    /// Fails when there is no script or every weight is zero.
    pub fn from_scripts(name: impl Into<String>, scripts: Vec<Script>) -> crate::Result<Self> {
        let mut total = 0u64;
        let cumulative = scripts
            .iter()
            .map(|s| {
                total += s.weight as u64;
                total
            })
            .collect();
        if total == 0 {
            return Err(no_weight());
        }
        Ok(Workload {
            name: name.into(),
            scripts,
            cumulative,
        })
    }

    /// Several workloads, each with its weight (`--workload a.sql@3 --workload b.sql@1`):
    /// each one's share of the executions is its weight over the sum, and within it its
    /// scripts keep their own proportions.
    pub fn combine(parts: Vec<(Workload, u32)>) -> crate::Result<Self> {
        if parts.len() == 1 && parts[0].1 > 0 {
            return Ok(parts.into_iter().next().expect("one").0);
        }
        let sums: Vec<u64> = parts
            .iter()
            .map(|(w, _)| w.cumulative.last().copied().unwrap_or(0).max(1))
            .collect();
        let product = sums
            .iter()
            .try_fold(1u64, |acc, s| acc.checked_mul(*s))
            .filter(|p| *p <= u32::MAX as u64)
            .ok_or_else(|| {
                crate::Error::BadInput(
                    "the scripts' weights are too large to combine; use smaller weights".into(),
                )
            })?;
        let name = parts
            .iter()
            .map(|(w, weight)| format!("{}@{weight}", w.name))
            .collect::<Vec<_>>()
            .join(" + ");
        let mut scripts = Vec::new();
        for ((w, weight), sum) in parts.into_iter().zip(sums) {
            for mut s in w.scripts {
                let scaled = s.weight as u64 * weight as u64 * (product / sum);
                s.weight = u32::try_from(scaled).map_err(|_| {
                    crate::Error::BadInput(
                        "the scripts' weights are too large to combine; use smaller weights".into(),
                    )
                })?;
                scripts.push(s);
            }
        }
        Self::from_scripts(name, scripts)
    }

    /// Picks a script index in proportion to the weights.
    pub fn pick(&self, rng: &mut SmallRng) -> usize {
        let total = *self.cumulative.last().expect("non-empty");
        let x = rng.gen_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }

    /// Sets `:scale` in every script.
    pub fn set_scale(&mut self, scale: i64) {
        for s in &mut self.scripts {
            s.initial[SLOT_SCALE] = Value::Int(scale);
        }
    }

    /// Whether some script is a pgbench built-in whose `:scale` pgbench reads from
    /// pgbench_branches.
    pub fn detects_scale(&self) -> bool {
        self.scripts.iter().any(|s| s.detects_scale)
    }

    /// The operations of scripts made from operations (one statement with its own
    /// generator: a provided workload, `select1`), in order; file scripts are skipped.
    pub fn ops(&self) -> Vec<Operation> {
        self.scripts
            .iter()
            .filter_map(|s| match (&s.statements[..], &s.commands[..]) {
                ([st], [Command::Sql(0)]) => match &st.binds {
                    Binds::Generated(gen) => Some(Operation {
                        name: s.name.clone(),
                        kind: s.kind,
                        sql: st.sql.clone(),
                        param_types: st.param_types.clone(),
                        weight: s.weight,
                        params: gen.clone(),
                    }),
                    Binds::Vars(_) => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Statements over all scripts (for sizing the statistics).
    pub fn statement_count(&self) -> usize {
        self.scripts.iter().map(|s| s.statements.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn op(name: &str, weight: u32) -> Operation {
        Operation {
            name: name.into(),
            kind: OpKind::Read,
            sql: "SELECT 1".into(),
            param_types: vec![],
            weight,
            params: Arc::new(|_| Vec::new()),
        }
    }

    fn shares(w: &Workload) -> Vec<f64> {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = vec![0usize; w.scripts.len()];
        for _ in 0..100_000 {
            counts[w.pick(&mut rng)] += 1;
        }
        counts.iter().map(|c| *c as f64 / 100_000.0).collect()
    }

    #[test]
    fn picks_follow_the_weights() {
        let w = Workload::new("t", vec![op("a", 9), op("never", 0), op("b", 1)]).unwrap();
        let s = shares(&w);
        assert_eq!(s[1], 0.0);
        assert!((s[0] - 0.9).abs() < 0.01, "{s:?}");
    }

    #[test]
    fn a_workload_without_weight_is_refused() {
        assert!(Workload::new("t", vec![op("a", 0)]).is_err());
        assert!(Workload::new("t", vec![]).is_err());
    }

    #[test]
    fn combined_workloads_share_by_their_weights_and_keep_inner_proportions() {
        let inner = Workload::new("g", vec![op("a", 30), op("b", 10)]).unwrap();
        let single = Workload::new("s", vec![op("s", 1)]).unwrap();
        let w = Workload::combine(vec![(inner, 1), (single, 3)]).unwrap();
        assert_eq!(w.name, "g@1 + s@3");
        let s = shares(&w);
        assert!((s[0] - 0.1875).abs() < 0.01, "{s:?}");
        assert!((s[1] - 0.0625).abs() < 0.01, "{s:?}");
        assert!((s[2] - 0.75).abs() < 0.01, "{s:?}");
    }

    #[test]
    fn transaction_block_statements_are_recognised() {
        assert_eq!(Block::of("BEGIN"), Block::Opens);
        assert_eq!(
            Block::of("start transaction isolation level serializable"),
            Block::Opens
        );
        assert_eq!(Block::of("END"), Block::Closes);
        assert_eq!(Block::of("commit"), Block::Closes);
        assert_eq!(Block::of("ROLLBACK"), Block::Closes);
        assert_eq!(Block::of("ROLLBACK TO SAVEPOINT a"), Block::Other);
        assert_eq!(Block::of("SELECT 1"), Block::Other);
    }
}
