//! pgbench's expression language, as `\set` and `\sleep` use it: values (NULL, boolean,
//! 64-bit integer, double), operators with pgbench's precedence and its integer/double rules,
//! `CASE`, and pgbench's functions (`random*`, `hash*`, `abs`, `least`, ...).
//!
//! Pure: parsing and evaluation, no I/O. Parsing folds constant sub-expressions, so an error
//! a constant already shows (`1 / 0`, `random_gaussian(1, 10, 1.5)`) is refused at load time
//! with its line. Evaluation errors at run time are errors of the client, as in pgbench.
//!
//! The random functions draw from the client's own generator; the numbers follow the same
//! distributions as pgbench's, not the same sequence (pgbench's PRNG is not ported).

use rand::rngs::SmallRng;
use rand::Rng;

/// A variable's value. Text only comes from `--define` values that are not numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Text(std::sync::Arc<str>),
}

impl Value {
    /// A `--define` value, typed as pgbench types variables set from text: null, booleans,
    /// integers, doubles, else text.
    pub fn from_text(s: &str) -> Value {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "null" => return Value::Null,
            "true" | "yes" | "on" => return Value::Bool(true),
            "false" | "no" | "off" => return Value::Bool(false),
            _ => {}
        }
        if let Ok(i) = t.parse::<i64>() {
            return Value::Int(i);
        }
        if let Ok(d) = t.parse::<f64>() {
            return Value::Double(d);
        }
        Value::Text(s.into())
    }

    /// The text sent to the server (pgbench sends every parameter as text). None for NULL.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
            Value::Int(i) => Some(i.to_string()),
            Value::Double(d) => Some(double_text(*d)),
            Value::Text(t) => Some(t.to_string()),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "int",
            Value::Double(_) => "double",
            Value::Text(_) => "text",
        }
    }

    fn as_int(&self) -> Result<i64, String> {
        match self {
            Value::Int(i) => Ok(*i),
            Value::Double(d) => double_to_int(*d),
            other => Err(format!("cannot coerce {} to int", other.type_name())),
        }
    }

    fn as_double(&self) -> Result<f64, String> {
        match self {
            Value::Int(i) => Ok(*i as f64),
            Value::Double(d) => Ok(*d),
            other => Err(format!("cannot coerce {} to double", other.type_name())),
        }
    }

    /// Truth of a condition: booleans only; NULL is false.
    fn truth(&self) -> Result<bool, String> {
        match self {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            other => Err(format!("cannot coerce {} to boolean", other.type_name())),
        }
    }
}

/// Doubles as text: integral values without a fraction, others in the shortest form that
/// reads back to the same double; NaN and infinities spelled as PostgreSQL reads them.
pub fn double_text(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if d.fract() == 0.0 && d.abs() < 1e15 {
        format!("{}", d as i64)
    } else {
        format!("{d}")
    }
}

/// Rounds half to even, as pgbench's int() does (int(2.5) = 2, int(-7.7) = -8).
fn double_to_int(d: f64) -> Result<i64, String> {
    let r = d.round_ties_even();
    if r.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r) {
        return Err(format!(
            "double {d} is out of the range of a 64-bit integer"
        ));
    }
    Ok(r as i64)
}

/// Smallest parameter of random_gaussian (pgbench's MIN_GAUSSIAN_PARAM).
pub const MIN_GAUSSIAN_PARAM: f64 = 2.0;
/// The range pgbench 15 allows for random_zipfian's parameter.
pub const MIN_ZIPFIAN_PARAM: f64 = 1.001;
pub const MAX_ZIPFIAN_PARAM: f64 = 1000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Abs,
    Debug,
    Double,
    Int,
    Exp,
    Ln,
    Sqrt,
    Pi,
    Pow,
    Mod,
    Least,
    Greatest,
    HashMurmur2,
    HashFnv1a,
    Random,
    RandomGaussian,
    RandomExponential,
    RandomZipfian,
}

/// Function names as written, their function and argument count range.
const FUNCTIONS: &[(&str, Func, usize, usize)] = &[
    ("abs", Func::Abs, 1, 1),
    ("debug", Func::Debug, 1, 1),
    ("double", Func::Double, 1, 1),
    ("int", Func::Int, 1, 1),
    ("exp", Func::Exp, 1, 1),
    ("ln", Func::Ln, 1, 1),
    ("sqrt", Func::Sqrt, 1, 1),
    ("pi", Func::Pi, 0, 0),
    ("pow", Func::Pow, 2, 2),
    ("power", Func::Pow, 2, 2),
    ("mod", Func::Mod, 2, 2),
    ("least", Func::Least, 1, usize::MAX),
    ("greatest", Func::Greatest, 1, usize::MAX),
    ("hash", Func::HashMurmur2, 1, 2),
    ("hash_murmur2", Func::HashMurmur2, 1, 2),
    ("hash_fnv1a", Func::HashFnv1a, 1, 2),
    ("random", Func::Random, 2, 2),
    ("random_gaussian", Func::RandomGaussian, 3, 3),
    ("random_exponential", Func::RandomExponential, 3, 3),
    ("random_zipfian", Func::RandomZipfian, 3, 3),
];

/// The function names, for error messages.
pub fn function_names() -> String {
    FUNCTIONS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(Value),
    /// A variable slot.
    Var(usize),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    BitNot(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `x IS NULL` (None) or `x IS TRUE/FALSE` (Some); negated for `IS NOT`.
    Is(Box<Expr>, Option<bool>, bool),
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    Call(Func, Vec<Expr>),
}

/// What evaluation needs besides the expression.
pub struct Env<'a> {
    pub vars: &'a [Value],
    pub rng: &'a mut SmallRng,
    /// The seed of hash functions called without one (pgbench's `:default_seed`).
    pub default_seed: i64,
}

impl Expr {
    pub fn eval(&self, env: &mut Env<'_>) -> Result<Value, String> {
        Ok(match self {
            Expr::Const(v) => v.clone(),
            Expr::Var(i) => env.vars[*i].clone(),
            Expr::Neg(e) => match e.eval(env)? {
                Value::Null => Value::Null,
                Value::Int(i) => Value::Int(i.checked_neg().ok_or("bigint out of range")?),
                Value::Double(d) => Value::Double(-d),
                other => return Err(format!("cannot negate {}", other.type_name())),
            },
            Expr::Not(e) => match e.eval(env)? {
                Value::Null => Value::Null,
                v => Value::Bool(!v.truth()?),
            },
            Expr::BitNot(e) => match e.eval(env)? {
                Value::Null => Value::Null,
                v => Value::Int(!v.as_int()?),
            },
            Expr::And(a, b) => match a.eval(env)? {
                Value::Null => Value::Null,
                v if !v.truth()? => Value::Bool(false),
                _ => match b.eval(env)? {
                    Value::Null => Value::Null,
                    v => Value::Bool(v.truth()?),
                },
            },
            Expr::Or(a, b) => match a.eval(env)? {
                Value::Null => Value::Null,
                v if v.truth()? => Value::Bool(true),
                _ => match b.eval(env)? {
                    Value::Null => Value::Null,
                    v => Value::Bool(v.truth()?),
                },
            },
            Expr::Is(e, what, negated) => {
                let v = e.eval(env)?;
                let is = match what {
                    None => v == Value::Null,
                    Some(b) => v == Value::Bool(*b),
                };
                Value::Bool(is != *negated)
            }
            Expr::Case(arms, otherwise) => {
                for (cond, then) in arms {
                    if cond.eval(env)?.truth()? {
                        return then.eval(env);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(env)?,
                    None => Value::Null,
                }
            }
            Expr::Bin(op, a, b) => binary(*op, a.eval(env)?, b.eval(env)?)?,
            Expr::Call(f, args) => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(a.eval(env)?);
                }
                call(*f, &values, env)?
            }
        })
    }

    fn constant(&self) -> Option<&Value> {
        match self {
            Expr::Const(v) => Some(v),
            _ => None,
        }
    }

    /// Whether the value depends on the run: random numbers, `debug` (it prints), and hashes
    /// without a seed (they use `:default_seed`).
    fn depends_on_run(&self) -> bool {
        match self {
            Expr::Call(f, args) => {
                matches!(
                    f,
                    Func::Random
                        | Func::RandomGaussian
                        | Func::RandomExponential
                        | Func::RandomZipfian
                        | Func::Debug
                ) || (matches!(f, Func::HashMurmur2 | Func::HashFnv1a) && args.len() == 1)
                    || args.iter().any(Expr::depends_on_run)
            }
            _ => false,
        }
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, String> {
    if a == Value::Null || b == Value::Null {
        return Ok(Value::Null);
    }
    let doubles = matches!(a, Value::Double(_)) || matches!(b, Value::Double(_));
    let overflow = || "bigint out of range".to_string();
    Ok(match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div if doubles => {
            let (x, y) = (a.as_double()?, b.as_double()?);
            Value::Double(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                _ => x / y,
            })
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
            let (x, y) = (a.as_int()?, b.as_int()?);
            Value::Int(
                match op {
                    BinOp::Add => x.checked_add(y),
                    BinOp::Sub => x.checked_sub(y),
                    BinOp::Mul => x.checked_mul(y),
                    _ if y == 0 => return Err("division by zero".into()),
                    _ => x.checked_div(y),
                }
                .ok_or_else(overflow)?,
            )
        }
        BinOp::Mod => Value::Int(int_mod(a.as_int()?, b.as_int()?)?),
        BinOp::BitAnd => Value::Int(a.as_int()? & b.as_int()?),
        BinOp::BitOr => Value::Int(a.as_int()? | b.as_int()?),
        BinOp::BitXor => Value::Int(a.as_int()? ^ b.as_int()?),
        BinOp::Shl => Value::Int(a.as_int()?.wrapping_shl(b.as_int()? as u32)),
        BinOp::Shr => Value::Int(a.as_int()?.wrapping_shr(b.as_int()? as u32)),
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = match (&a, &b) {
                (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
                (Value::Int(x), Value::Int(y)) => x.cmp(y),
                _ => a
                    .as_double()?
                    .partial_cmp(&b.as_double()?)
                    .unwrap_or(std::cmp::Ordering::Less),
            };
            use std::cmp::Ordering::*;
            Value::Bool(match op {
                BinOp::Eq => ord == Equal,
                BinOp::Ne => ord != Equal,
                BinOp::Lt => ord == Less,
                BinOp::Le => ord != Greater,
                BinOp::Gt => ord == Greater,
                _ => ord != Less,
            })
        }
    })
}

/// Integer remainder with the sign of the dividend (-7 % 3 = -1); x % -1 is 0.
fn int_mod(x: i64, y: i64) -> Result<i64, String> {
    if y == 0 {
        return Err("division by zero".into());
    }
    if y == -1 {
        return Ok(0);
    }
    Ok(x % y)
}

fn call(f: Func, args: &[Value], env: &mut Env<'_>) -> Result<Value, String> {
    if f != Func::Debug && args.contains(&Value::Null) {
        return Ok(Value::Null);
    }
    let d = |i: usize| args[i].as_double();
    let int = |i: usize| args[i].as_int();
    Ok(match f {
        Func::Abs => match &args[0] {
            Value::Double(x) => Value::Double(x.abs()),
            v => Value::Int(v.as_int()?.checked_abs().ok_or("bigint out of range")?),
        },
        Func::Debug => {
            eprintln!("debug(script): {:?}", args[0]);
            args[0].clone()
        }
        Func::Double => Value::Double(d(0)?),
        Func::Int => Value::Int(int(0)?),
        Func::Exp => Value::Double(d(0)?.exp()),
        Func::Ln => Value::Double(d(0)?.ln()),
        Func::Sqrt => Value::Double(d(0)?.sqrt()),
        Func::Pi => Value::Double(std::f64::consts::PI),
        Func::Pow => Value::Double(d(0)?.powf(d(1)?)),
        Func::Mod => Value::Int(int_mod(int(0)?, int(1)?)?),
        Func::Least | Func::Greatest => {
            let least = f == Func::Least;
            if args.iter().any(|a| matches!(a, Value::Double(_))) {
                let mut best = d(0)?;
                for i in 1..args.len() {
                    let x = d(i)?;
                    if (least && x < best) || (!least && x > best) {
                        best = x;
                    }
                }
                Value::Double(best)
            } else {
                let mut best = int(0)?;
                for i in 1..args.len() {
                    let x = int(i)?;
                    best = if least { best.min(x) } else { best.max(x) };
                }
                Value::Int(best)
            }
        }
        Func::HashMurmur2 | Func::HashFnv1a => {
            let seed = if args.len() > 1 {
                int(1)?
            } else {
                env.default_seed
            };
            let v = int(0)?;
            Value::Int(if f == Func::HashMurmur2 {
                hash_murmur2(v, seed)
            } else {
                hash_fnv1a(v, seed)
            })
        }
        Func::Random => Value::Int(random(int(0)?, int(1)?, env.rng)?),
        Func::RandomGaussian => Value::Int(random_gaussian(int(0)?, int(1)?, d(2)?, env.rng)?),
        Func::RandomExponential => {
            Value::Int(random_exponential(int(0)?, int(1)?, d(2)?, env.rng)?)
        }
        Func::RandomZipfian => Value::Int(random_zipfian(int(0)?, int(1)?, d(2)?, env.rng)?),
    })
}

fn check_range(lb: i64, ub: i64) -> Result<(), String> {
    if lb > ub {
        return Err(format!("empty range given to random ({lb} > {ub})"));
    }
    Ok(())
}

/// Uniform over `lb..=ub`.
pub fn random(lb: i64, ub: i64, rng: &mut SmallRng) -> Result<i64, String> {
    check_range(lb, ub)?;
    Ok(rng.gen_range(lb..=ub))
}

/// `lb + floor(size * r)` for `r` in [0, 1), kept inside the range.
fn scale_into(lb: i64, ub: i64, r: f64) -> i64 {
    let size = (ub as i128 - lb as i128 + 1) as f64;
    let off = (size * r).floor() as i128;
    (lb as i128 + off).clamp(lb as i128, ub as i128) as i64
}

pub fn check_gaussian(p: f64) -> Result<(), String> {
    if p.is_nan() || p < MIN_GAUSSIAN_PARAM {
        return Err(format!(
            "gaussian parameter must be at least {MIN_GAUSSIAN_PARAM:.1} (not {p})"
        ));
    }
    Ok(())
}

pub fn check_exponential(p: f64) -> Result<(), String> {
    if p.is_nan() || p <= 0.0 {
        return Err(format!(
            "exponential parameter must be greater than zero (not {p})"
        ));
    }
    Ok(())
}

pub fn check_zipfian(p: f64) -> Result<(), String> {
    if !(MIN_ZIPFIAN_PARAM..=MAX_ZIPFIAN_PARAM).contains(&p) {
        return Err(format!(
            "zipfian parameter must be in range [{MIN_ZIPFIAN_PARAM}, {MAX_ZIPFIAN_PARAM:.0}] (not {p})"
        ));
    }
    Ok(())
}

/// A normal distribution centred on the middle of the range, cut at `p` standard deviations
/// either side (Box-Muller, redrawn until inside the cut).
pub fn random_gaussian(lb: i64, ub: i64, p: f64, rng: &mut SmallRng) -> Result<i64, String> {
    check_range(lb, ub)?;
    check_gaussian(p)?;
    let z = loop {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
        let u2: f64 = rng.gen();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        if -p <= z && z < p {
            break z;
        }
    };
    Ok(scale_into(lb, ub, (z + p) / (2.0 * p)))
}

/// An exponential distribution over the range, cut so that the density at `ub` is
/// `exp(-p)` times that at `lb`: values near `lb` are the most frequent.
pub fn random_exponential(lb: i64, ub: i64, p: f64, rng: &mut SmallRng) -> Result<i64, String> {
    check_range(lb, ub)?;
    check_exponential(p)?;
    let cut = (-p).exp();
    let u: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let r = -(cut + (1.0 - cut) * u).ln() / p; // [0, 1)
    Ok(scale_into(lb, ub, r))
}

/// A Zipf distribution over the `n` values of the range (the k-th most frequent value is
/// `lb + k - 1`, with frequency proportional to 1/k^s): Devroye's rejection method for s > 1
/// (Non-Uniform Random Variate Generation, 1986, X.6.1).
pub fn random_zipfian(lb: i64, ub: i64, s: f64, rng: &mut SmallRng) -> Result<i64, String> {
    check_range(lb, ub)?;
    check_zipfian(s)?;
    let n = (ub as i128 - lb as i128 + 1) as f64;
    let b = 2f64.powf(s - 1.0);
    loop {
        let u: f64 = 1.0 - rng.gen::<f64>();
        let v: f64 = rng.gen();
        let x = u.powf(-1.0 / (s - 1.0)).floor();
        let t = (1.0 + 1.0 / x).powf(s - 1.0);
        if v * x * (t - 1.0) / (b - 1.0) <= t / b && x <= n {
            return Ok((lb as i128 + x as i128 - 1) as i64);
        }
    }
}

/// MurmurHash2, 64-bit (MurmurHash64A), of the 8 bytes of `v`, as pgbench's hash().
pub fn hash_murmur2(v: i64, seed: i64) -> i64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = (seed as u64) ^ 8u64.wrapping_mul(M);
    let mut k = v as u64;
    k = k.wrapping_mul(M);
    k ^= k >> R;
    k = k.wrapping_mul(M);
    h ^= k;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h as i64
}

/// FNV-1a, 64-bit, over the 8 bytes of `v` (least significant first), the offset basis
/// xor-ed with the seed, as pgbench's hash_fnv1a().
pub fn hash_fnv1a(v: i64, seed: i64) -> i64 {
    const BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = BASIS ^ seed as u64;
    let bytes = (v as u64).to_le_bytes();
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(PRIME);
    }
    h as i64
}

/// Parses an expression; `lookup` turns a variable name into its slot.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<usize>) -> Result<Expr, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        lookup,
    };
    let e = p.or()?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(format!(
            "unexpected {:?} in the expression",
            String::from_utf8_lossy(&p.s[p.pos..])
        ));
    }
    Ok(e)
}

/// Recursive descent, lowest precedence first: OR, AND, NOT, IS, comparisons, bitwise,
/// `+ -`, `* / %`, unary.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    lookup: &'a dyn Fn(&str) -> Option<usize>,
}

type PResult = Result<Expr, String>;

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, token: &str) -> bool {
        self.ws();
        if self.s[self.pos..].starts_with(token.as_bytes()) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// A keyword (case-insensitive, not followed by a name character).
    fn keyword(&mut self, kw: &str) -> bool {
        self.ws();
        let end = self.pos + kw.len();
        if end <= self.s.len()
            && self.s[self.pos..end].eq_ignore_ascii_case(kw.as_bytes())
            && !self.s.get(end).is_some_and(|c| is_name_char(*c))
        {
            self.pos = end;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> PResult {
        let mut left = self.and()?;
        while self.keyword("or") {
            let right = self.and()?;
            left = fold(Expr::Or(Box::new(left), Box::new(right)))?;
        }
        Ok(left)
    }

    fn and(&mut self) -> PResult {
        let mut left = self.not()?;
        while self.keyword("and") {
            let right = self.not()?;
            left = fold(Expr::And(Box::new(left), Box::new(right)))?;
        }
        Ok(left)
    }

    fn not(&mut self) -> PResult {
        if self.keyword("not") {
            let e = self.not()?;
            return fold(Expr::Not(Box::new(e)));
        }
        self.is()
    }

    fn is(&mut self) -> PResult {
        let e = self.comparison()?;
        if self.keyword("isnull") {
            return fold(Expr::Is(Box::new(e), None, false));
        }
        if self.keyword("notnull") {
            return fold(Expr::Is(Box::new(e), None, true));
        }
        if self.keyword("is") {
            let negated = self.keyword("not");
            let what = if self.keyword("null") {
                None
            } else if self.keyword("true") {
                Some(true)
            } else if self.keyword("false") {
                Some(false)
            } else {
                return Err("IS must be followed by [NOT] NULL, TRUE or FALSE".into());
            };
            return fold(Expr::Is(Box::new(e), what, negated));
        }
        Ok(e)
    }

    fn comparison(&mut self) -> PResult {
        let left = self.bitwise()?;
        let op = if self.eat("<=") {
            BinOp::Le
        } else if self.eat(">=") {
            BinOp::Ge
        } else if self.eat("<>") || self.eat("!=") {
            BinOp::Ne
        } else if self.peek() == Some(b'<') && self.s.get(self.pos + 1) != Some(&b'<') {
            self.pos += 1;
            BinOp::Lt
        } else if self.peek() == Some(b'>') && self.s.get(self.pos + 1) != Some(&b'>') {
            self.pos += 1;
            BinOp::Gt
        } else if self.eat("=") {
            BinOp::Eq
        } else {
            return Ok(left);
        };
        let right = self.bitwise()?;
        fold(Expr::Bin(op, Box::new(left), Box::new(right)))
    }

    fn bitwise(&mut self) -> PResult {
        let mut left = self.sum()?;
        loop {
            let op = if self.eat("<<") {
                BinOp::Shl
            } else if self.eat(">>") {
                BinOp::Shr
            } else if self.eat("&") {
                BinOp::BitAnd
            } else if self.eat("|") {
                BinOp::BitOr
            } else if self.eat("#") {
                BinOp::BitXor
            } else {
                return Ok(left);
            };
            let right = self.sum()?;
            left = fold(Expr::Bin(op, Box::new(left), Box::new(right)))?;
        }
    }

    fn sum(&mut self) -> PResult {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Some(b'+') => BinOp::Add,
                Some(b'-') => BinOp::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.product()?;
            left = fold(Expr::Bin(op, Box::new(left), Box::new(right)))?;
        }
    }

    fn product(&mut self) -> PResult {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(b'*') => BinOp::Mul,
                Some(b'/') => BinOp::Div,
                Some(b'%') => BinOp::Mod,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = fold(Expr::Bin(op, Box::new(left), Box::new(right)))?;
        }
    }

    fn unary(&mut self) -> PResult {
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                let e = self.unary()?;
                fold(Expr::Neg(Box::new(e)))
            }
            Some(b'+') => {
                self.pos += 1;
                self.unary()
            }
            Some(b'~') => {
                self.pos += 1;
                let e = self.unary()?;
                fold(Expr::BitNot(Box::new(e)))
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> PResult {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let e = self.or()?;
                if !self.eat(")") {
                    return Err("missing )".into());
                }
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            Some(b':') => {
                self.pos += 1;
                let name = self.word();
                if name.is_empty() {
                    return Err("a variable name must follow :".into());
                }
                (self.lookup)(&name).map(Expr::Var).ok_or_else(|| {
                    format!(
                        "undefined variable :{name}; define it on an earlier \\set line or \
                         with --define {name}=VALUE"
                    )
                })
            }
            Some(c) if is_name_char(c) => {
                if self.keyword("case") {
                    return self.case();
                }
                for (kw, v) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.keyword(kw) {
                        return Ok(Expr::Const(v));
                    }
                }
                let name = self.word().to_ascii_lowercase();
                self.function(&name)
            }
            Some(c) => Err(format!("unexpected {:?} in the expression", c as char)),
            None => Err("the expression is empty or ends too early".into()),
        }
    }

    fn number(&mut self) -> PResult {
        let start = self.pos;
        let mut double = false;
        while self.pos < self.s.len() {
            let c = self.s[self.pos];
            if c.is_ascii_digit() {
                self.pos += 1;
            } else if c == b'.' {
                double = true;
                self.pos += 1;
            } else if (c == b'e' || c == b'E')
                && self.s.get(self.pos + 1).is_some_and(|n| {
                    n.is_ascii_digit()
                        || ((*n == b'+' || *n == b'-')
                            && self.s.get(self.pos + 2).is_some_and(u8::is_ascii_digit))
                })
            {
                double = true;
                self.pos += 2;
            } else {
                break;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).expect("ascii");
        if double {
            text.parse::<f64>()
                .map(|d| Expr::Const(Value::Double(d)))
                .map_err(|_| format!("{text} is not a number"))
        } else {
            text.parse::<i64>()
                .map(|i| Expr::Const(Value::Int(i)))
                .map_err(|_| format!("{text} does not fit in a 64-bit integer"))
        }
    }

    fn case(&mut self) -> PResult {
        let mut arms = Vec::new();
        while self.keyword("when") {
            let cond = self.or()?;
            if !self.keyword("then") {
                return Err("CASE: WHEN ... must be followed by THEN".into());
            }
            arms.push((cond, self.or()?));
        }
        if arms.is_empty() {
            return Err("CASE needs at least one WHEN ... THEN ...".into());
        }
        let otherwise = if self.keyword("else") {
            Some(Box::new(self.or()?))
        } else {
            None
        };
        if !self.keyword("end") {
            return Err("CASE must end with END".into());
        }
        fold(Expr::Case(arms, otherwise))
    }

    fn function(&mut self, name: &str) -> PResult {
        let Some(&(_, f, min, max)) = FUNCTIONS.iter().find(|x| x.0 == name) else {
            return Err(format!(
                "unknown function {name}() (pgopt knows {})",
                function_names()
            ));
        };
        if !self.eat("(") {
            return Err(format!("{name} needs its arguments in parentheses"));
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.or()?);
                if self.eat(",") {
                    continue;
                }
                if self.eat(")") {
                    break;
                }
                return Err(format!("{name}(): expected , or )"));
            }
        }
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!(
                "{name}() takes {want} argument(s), got {}",
                args.len()
            ));
        }
        // Parameters of the random functions that are constants are checked now.
        let check: Option<fn(f64) -> Result<(), String>> = match f {
            Func::RandomGaussian => Some(check_gaussian),
            Func::RandomExponential => Some(check_exponential),
            Func::RandomZipfian => Some(check_zipfian),
            _ => None,
        };
        if let Some(check) = check {
            if let Some(p) = args[2].constant() {
                check(p.as_double()?)?;
            }
        }
        if matches!(
            f,
            Func::Random | Func::RandomGaussian | Func::RandomExponential | Func::RandomZipfian
        ) {
            if let (Some(lb), Some(ub)) = (args[0].constant(), args[1].constant()) {
                check_range(lb.as_int()?, ub.as_int()?)?;
            }
        }
        fold(Expr::Call(f, args))
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self.pos < self.s.len() && is_name_char(self.s[self.pos]) {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Evaluates a node whose operands are all constants (and that draws no random number), so
/// `100000 * 10` is one literal and `1 / 0` is refused at load time.
fn fold(e: Expr) -> PResult {
    let operands_constant = match &e {
        Expr::Neg(x) | Expr::Not(x) | Expr::BitNot(x) | Expr::Is(x, _, _) => x.constant().is_some(),
        Expr::Bin(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
            a.constant().is_some() && b.constant().is_some()
        }
        Expr::Call(_, args) => !e.depends_on_run() && args.iter().all(|a| a.constant().is_some()),
        _ => false,
    };
    if !operands_constant {
        return Ok(e);
    }
    let mut rng = <SmallRng as rand::SeedableRng>::seed_from_u64(0);
    let mut env = Env {
        vars: &[],
        rng: &mut rng,
        default_seed: 0,
    };
    Ok(Expr::Const(e.eval(&mut env)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn eval_with(text: &str, vars: &[(&str, Value)]) -> Result<Value, String> {
        let names: Vec<&str> = vars.iter().map(|v| v.0).collect();
        let values: Vec<Value> = vars.iter().map(|v| v.1.clone()).collect();
        let e = parse(text, &|n| names.iter().position(|x| *x == n))?;
        let mut rng = SmallRng::seed_from_u64(7);
        e.eval(&mut Env {
            vars: &values,
            rng: &mut rng,
            default_seed: 5432,
        })
    }

    fn eval(text: &str) -> Value {
        eval_with(text, &[]).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        eval_with(text, &[]).unwrap_err()
    }

    #[test]
    fn integer_and_double_arithmetic_follow_pgbench() {
        assert_eq!(eval("7 / 2"), Value::Int(3));
        assert_eq!(eval("-7 / 2"), Value::Int(-3));
        assert_eq!(eval("7.0 / 2"), Value::Double(3.5));
        assert_eq!(eval("7 / 2.0"), Value::Double(3.5));
        assert_eq!(eval("-7 % 3"), Value::Int(-1));
        assert_eq!(eval("7 % -1"), Value::Int(0));
        assert_eq!(eval("2 + 3 * 4"), Value::Int(14));
        assert_eq!(eval("(2 + 3) * 4"), Value::Int(20));
        assert_eq!(eval("- (2 + 3)"), Value::Int(-5));
        assert_eq!(eval("1.5e2 + 1"), Value::Double(151.0));
        assert_eq!(eval("1 / 0.0"), Value::Double(f64::INFINITY));
        assert!(err("1 / 0").contains("division by zero"));
        assert!(err("5 % 0").contains("division by zero"));
        assert!(err("9223372036854775807 + 1").contains("out of range"));
        assert_eq!(eval("1 + null"), Value::Null);
        assert_eq!(eval("5 & 3 | 8"), Value::Int(9));
        assert_eq!(eval("1 << 4"), Value::Int(16));
        assert_eq!(eval("6 # 3"), Value::Int(5));
        assert_eq!(eval("~0"), Value::Int(-1));
    }

    #[test]
    fn comparisons_booleans_and_case() {
        assert_eq!(eval("1 < 2"), Value::Bool(true));
        assert_eq!(eval("2 <= 2.0"), Value::Bool(true));
        assert_eq!(eval("3 <> 3"), Value::Bool(false));
        assert_eq!(eval("3 != 4"), Value::Bool(true));
        assert_eq!(eval("1 < 2 and 2 > 3"), Value::Bool(false));
        assert_eq!(eval("1 < 2 or 2 > 3"), Value::Bool(true));
        assert_eq!(eval("not true"), Value::Bool(false));
        assert_eq!(eval("null is null"), Value::Bool(true));
        assert_eq!(eval("1 is not null"), Value::Bool(true));
        assert_eq!(eval("(1 = 1) is true"), Value::Bool(true));
        assert_eq!(eval("1 isnull"), Value::Bool(false));
        assert!(err("5 or 0").contains("cannot coerce int to boolean"));
        assert_eq!(eval("case when 1 > 2 then 10 else 20 end"), Value::Int(20));
        assert_eq!(
            eval("CASE WHEN 1 > 2 THEN 10 WHEN 2 > 1 THEN 30 END"),
            Value::Int(30)
        );
        assert_eq!(eval("case when false then 1 end"), Value::Null);
    }

    #[test]
    fn numeric_functions() {
        assert_eq!(eval("abs(-5)"), Value::Int(5));
        assert_eq!(eval("abs(-5.5)"), Value::Double(5.5));
        assert_eq!(eval("int(2.5)"), Value::Int(2));
        assert_eq!(eval("int(3.5)"), Value::Int(4));
        assert_eq!(eval("int(-7.7)"), Value::Int(-8));
        assert_eq!(eval("double(3)"), Value::Double(3.0));
        assert_eq!(eval("sqrt(16)"), Value::Double(4.0));
        assert_eq!(eval("pi()"), Value::Double(std::f64::consts::PI));
        assert_eq!(eval("pow(2, 10)"), Value::Double(1024.0));
        assert_eq!(eval("power(2, 0.5)"), Value::Double(2f64.sqrt()));
        assert_eq!(eval("exp(0)"), Value::Double(1.0));
        assert_eq!(eval("ln(1)"), Value::Double(0.0));
        assert_eq!(eval("mod(-7, 3)"), Value::Int(-1));
        assert_eq!(eval("least(5, 2, 9)"), Value::Int(2));
        assert_eq!(eval("greatest(5, 2, 9)"), Value::Int(9));
        assert_eq!(eval("least(5, 2.5)"), Value::Double(2.5));
        assert_eq!(eval("greatest(1, 2.0)"), Value::Double(2.0));
        assert!(err("int(1e300)").contains("out of the range"));
        assert!(err("nosuch(1)").contains("unknown function nosuch"));
        assert!(err("abs(1, 2)").contains("takes 1"));
    }

    #[test]
    fn hashes_are_deterministic_and_match_pgbench() {
        assert_eq!(eval("hash(10, 5432)"), Value::Int(-5817877081768721676));
        assert_eq!(
            eval("hash_murmur2(10, 5432)"),
            Value::Int(-5817877081768721676)
        );
        assert_eq!(
            eval("hash_fnv1a(10, 5432)"),
            Value::Int(-7793829335365542153)
        );
        // Without a seed: :default_seed (5432 in these tests).
        assert_eq!(eval("hash(10)"), Value::Int(-5817877081768721676));
        assert_ne!(eval("hash(10, 1)"), eval("hash(11, 1)"));
    }

    fn draws(text: &str, n: usize) -> Vec<i64> {
        let e = parse(text, &|_| None).unwrap();
        let mut rng = SmallRng::seed_from_u64(11);
        (0..n)
            .map(|_| {
                match e
                    .eval(&mut Env {
                        vars: &[],
                        rng: &mut rng,
                        default_seed: 0,
                    })
                    .unwrap()
                {
                    Value::Int(i) => i,
                    v => panic!("{v:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn random_is_uniform_within_both_bounds() {
        let v = draws("random(1, 10)", 20_000);
        assert!(v.iter().all(|x| (1..=10).contains(x)));
        for k in 1..=10 {
            let n = v.iter().filter(|x| **x == k).count();
            assert!((1600..2400).contains(&n), "{k}: {n}");
        }
        assert!(err("random(10, 1)").contains("empty range"));
        assert_eq!(draws("random(-5, -5)", 3), vec![-5, -5, -5]);
    }

    #[test]
    fn random_gaussian_centres_on_the_middle_and_checks_its_parameter() {
        let v = draws("random_gaussian(1, 100, 2.5)", 20_000);
        assert!(v.iter().all(|x| (1..=100).contains(x)));
        let middle = v.iter().filter(|x| (41..=60).contains(*x)).count();
        let edge = v.iter().filter(|x| (1..=20).contains(*x)).count();
        assert!(middle > 3 * edge, "middle {middle} edge {edge}");
        let mean = v.iter().sum::<i64>() as f64 / v.len() as f64;
        assert!((mean - 50.5).abs() < 1.5, "{mean}");
        assert!(err("random_gaussian(1, 10, 1.9)").contains("at least 2.0"));
    }

    #[test]
    fn random_exponential_favours_the_low_end_and_checks_its_parameter() {
        let v = draws("random_exponential(1, 100, 5)", 20_000);
        assert!(v.iter().all(|x| (1..=100).contains(x)));
        let low = v.iter().filter(|x| **x <= 20).count();
        let high = v.iter().filter(|x| **x > 80).count();
        assert!(low > 10 * high, "low {low} high {high}");
        assert!(err("random_exponential(1, 10, 0)").contains("greater than zero"));
        assert!(err("random_exponential(1, 10, -1.0)").contains("greater than zero"));
    }

    #[test]
    fn random_zipfian_makes_the_first_value_the_most_frequent_and_checks_its_parameter() {
        let v = draws("random_zipfian(1, 1000, 1.5)", 20_000);
        assert!(v.iter().all(|x| (1..=1000).contains(x)));
        let ones = v.iter().filter(|x| **x == 1).count();
        let twos = v.iter().filter(|x| **x == 2).count();
        // P(1)/P(2) = 2^1.5 ~ 2.83.
        let ratio = ones as f64 / twos as f64;
        assert!((2.3..3.4).contains(&ratio), "{ratio}");
        assert!(err("random_zipfian(1, 10, 1.0)").contains("[1.001, 1000]"));
        assert!(err("random_zipfian(1, 10, 0.5)").contains("[1.001, 1000]"));
        assert!(err("random_zipfian(1, 10, 1001)").contains("[1.001, 1000]"));
    }

    #[test]
    fn variables_are_looked_up_and_unknown_ones_refused() {
        let v = eval_with(
            ":a * 2 + :b",
            &[("a", Value::Int(4)), ("b", Value::Double(0.5))],
        );
        assert_eq!(v.unwrap(), Value::Double(8.5));
        assert!(eval_with(":zz + 1", &[]).unwrap_err().contains(":zz"));
        // A runtime parameter check (the parameter is a variable).
        let e = eval_with("random_gaussian(1, 10, :p)", &[("p", Value::Double(1.0))]);
        assert!(e.unwrap_err().contains("at least 2.0"));
    }

    #[test]
    fn values_become_the_text_pgbench_sends() {
        assert_eq!(Value::Int(-3).to_text().unwrap(), "-3");
        assert_eq!(Value::Double(5.0).to_text().unwrap(), "5");
        assert_eq!(Value::Double(2.5).to_text().unwrap(), "2.5");
        assert_eq!(Value::Bool(true).to_text().unwrap(), "true");
        assert_eq!(Value::Null.to_text(), None);
        assert_eq!(Value::from_text("12"), Value::Int(12));
        assert_eq!(Value::from_text("1.5"), Value::Double(1.5));
        assert_eq!(Value::from_text("on"), Value::Bool(true));
        assert_eq!(Value::from_text("abc"), Value::Text("abc".into()));
    }
}
