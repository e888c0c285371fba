//! Conditions for [`super`]: what each ANDed condition of a WHERE or ON clause searches.

use pg_query::protobuf::{self as pb};
use pg_query::{Node, NodeEnum};

use super::expr;
use super::{Atom, Term, Walker};
use crate::indexes::model::{
    KeyExpr, ParamKey, ParamRole, ParamUse, PatternLimit, Predicate, PredicateOp,
};

impl Walker<'_> {
    /// Records a WHERE/ON clause. `keep` says which accesses its predicates may filter
    /// (an outer join's ON filters only its nullable side); join keys are always kept.
    pub(super) fn condition(&mut self, node: &Node, keep: &dyn Fn(usize) -> bool) {
        match node.node.as_ref() {
            Some(NodeEnum::BoolExpr(b)) if b.boolop() == pb::BoolExprType::AndExpr => {
                for arg in &b.args {
                    self.condition(arg, keep);
                }
            }
            Some(NodeEnum::BoolExpr(b)) if b.boolop() == pb::BoolExprType::OrExpr => {
                self.or_condition(&b.args, keep)
            }
            _ => {
                let atom = self.atom(node);
                self.record(atom, keep);
            }
        }
    }

    fn record(&mut self, atom: Atom, keep: &dyn Fn(usize) -> bool) {
        match atom {
            Atom::Pred(a, p) if keep(a) => self.shape.accesses[a].predicates.push(p),
            Atom::Join(sides) => {
                for (a, col) in sides {
                    self.join_key(a, col);
                }
            }
            _ => {}
        }
    }

    /// An OR: `k = 1 OR k = 2` becomes IN; alternatives that all search one table become
    /// its OR group; anything else is only read.
    fn or_condition(&mut self, args: &[Node], keep: &dyn Fn(usize) -> bool) {
        let mut access = None;
        let mut alternatives = Vec::new();
        let mut usable = true;
        for arg in args {
            let mut preds = Vec::new();
            for conjunct in conjuncts(arg) {
                match self.atom(conjunct) {
                    Atom::Pred(a, p) if p.op.searches() => {
                        usable &= access.is_none_or(|x| x == a);
                        access = Some(a);
                        preds.push(p);
                    }
                    _ => usable = false,
                }
            }
            usable &= !preds.is_empty();
            alternatives.push(preds);
        }
        let Some(a) = access.filter(|a| usable && keep(*a)) else {
            return;
        };
        if let Some(p) = as_in_list(&alternatives) {
            return self.shape.accesses[a].predicates.push(p);
        }
        let groups = &mut self.shape.accesses[a].or_groups;
        if groups.is_empty() {
            *groups = alternatives;
        }
    }

    /// What one condition (not an AND or OR) is.
    pub(super) fn atom(&mut self, node: &Node) -> Atom {
        match node.node.as_ref() {
            Some(NodeEnum::ColumnRef(_)) => self.boolean(node, true),
            Some(NodeEnum::BoolExpr(b)) if b.boolop() == pb::BoolExprType::NotExpr => {
                match b.args.as_slice() {
                    [arg] if matches!(arg.node, Some(NodeEnum::ColumnRef(_))) => {
                        self.boolean(arg, false)
                    }
                    _ => self.only_read(node),
                }
            }
            Some(NodeEnum::BooleanTest(t)) => self.boolean_test(t),
            Some(NodeEnum::NullTest(t)) => self.null_test(t),
            Some(NodeEnum::AExpr(e)) => self.aexpr(e),
            Some(NodeEnum::SubLink(s)) => self.sublink(s),
            _ => self.only_read(node),
        }
    }

    fn only_read(&mut self, node: &Node) -> Atom {
        self.scan(node);
        Atom::Nothing
    }

    /// `WHERE flag` / `WHERE NOT flag`.
    fn boolean(&mut self, node: &Node, value: bool) -> Atom {
        match self.term(node) {
            Term::Key(a, key) => Atom::Pred(
                a,
                pred(key, PredicateOp::Bool { value }, Some(value.to_string())),
            ),
            _ => Atom::Nothing,
        }
    }

    fn boolean_test(&mut self, t: &pb::BooleanTest) -> Atom {
        let Some(arg) = t.arg.as_deref() else {
            return Atom::Nothing;
        };
        let Term::Key(a, key) = self.term(arg) else {
            return Atom::Nothing;
        };
        let p = match t.booltesttype() {
            pb::BoolTestType::IsTrue => {
                pred(key, PredicateOp::Bool { value: true }, Some("true".into()))
            }
            pb::BoolTestType::IsFalse => pred(
                key,
                PredicateOp::Bool { value: false },
                Some("false".into()),
            ),
            _ => pred(key, PredicateOp::Other, None),
        };
        Atom::Pred(a, p)
    }

    fn null_test(&mut self, t: &pb::NullTest) -> Atom {
        let Some(arg) = t.arg.as_deref() else {
            return Atom::Nothing;
        };
        let Term::Key(a, key) = self.term(arg) else {
            return Atom::Nothing;
        };
        let op = match t.nulltesttype() {
            pb::NullTestType::IsNull => PredicateOp::IsNull,
            _ => PredicateOp::IsNotNull,
        };
        Atom::Pred(a, pred(key, op, None))
    }

    fn aexpr(&mut self, e: &pb::AExpr) -> Atom {
        let op = expr::last_name(&e.name).to_string();
        let (Some(l), Some(r)) = (e.lexpr.as_deref(), e.rexpr.as_deref()) else {
            return Atom::Nothing;
        };
        match e.kind() {
            pb::AExprKind::AexprOp => self.comparison(&op, l, r),
            pb::AExprKind::AexprOpAny => self.any(&op, l, r),
            pb::AExprKind::AexprIn => self.in_list(&op, l, r),
            pb::AExprKind::AexprLike | pb::AExprKind::AexprIlike => self.like(&op, l, r),
            pb::AExprKind::AexprBetween => self.between(l, r),
            _ => {
                self.scan(l);
                self.scan(r);
                let atom = self.key_other(l);
                if let Atom::Pred(a, p) = &atom {
                    let key = p.key.clone();
                    self.param(r, ParamRole::Eq, *a, &key);
                }
                atom
            }
        }
    }

    /// A condition on a key that no index searches (`<>`, NOT BETWEEN, ...).
    fn key_other(&mut self, l: &Node) -> Atom {
        match self.term(l) {
            Term::Key(a, key) => Atom::Pred(a, pred(key, PredicateOp::Other, None)),
            _ => Atom::Nothing,
        }
    }

    fn comparison(&mut self, op: &str, l: &Node, r: &Node) -> Atom {
        match (self.term(l), self.term(r)) {
            (Term::Key(a, ka), Term::Key(b, kb)) if a != b => join(op, (a, ka), Some((b, kb))),
            (Term::Key(a, k), Term::Key(..) | Term::Volatile)
            | (Term::Volatile, Term::Key(a, k)) => Atom::Pred(a, pred(k, PredicateOp::Other, None)),
            (Term::Key(a, k), Term::Mixed) | (Term::Mixed, Term::Key(a, k)) => {
                join(op, (a, k), None)
            }
            (Term::Key(a, k), Term::Value(c)) => {
                self.param(r, role_of(op), a, &k);
                Atom::Pred(a, compare(op, k, c))
            }
            (Term::Value(c), Term::Key(a, k)) => {
                self.param(l, role_of(flip(op)), a, &k);
                Atom::Pred(a, compare(flip(op), k, c))
            }
            _ => Atom::Nothing,
        }
    }

    /// `k = ANY($1)` / `k = ANY(ARRAY[..])`.
    fn any(&mut self, op: &str, l: &Node, r: &Node) -> Atom {
        let values = match r.node.as_ref() {
            Some(NodeEnum::AArrayExpr(a)) => Some(a.elements.len()),
            _ => None,
        };
        match (self.term(l), self.term(r)) {
            (Term::Key(a, k), Term::Value(_)) if op == "=" => {
                match r.node.as_ref() {
                    Some(NodeEnum::AArrayExpr(arr)) => self.in_params(&arr.elements, a, &k),
                    _ => self.param(r, ParamRole::AnyArray, a, &k),
                }
                Atom::Pred(a, pred(k, PredicateOp::In { values }, None))
            }
            (Term::Key(a, k), _) => Atom::Pred(a, pred(k, PredicateOp::Other, None)),
            _ => Atom::Nothing,
        }
    }

    /// `k IN (..)` (op `=`) and `k NOT IN (..)` (op `<>`).
    fn in_list(&mut self, op: &str, l: &Node, r: &Node) -> Atom {
        let items: Vec<&Node> = match r.node.as_ref() {
            Some(NodeEnum::List(list)) => list.items.iter().collect(),
            _ => vec![r],
        };
        let key = self.term(l);
        let all_values = items
            .iter()
            .map(|i| self.term(i))
            .all(|t| matches!(t, Term::Value(_)));
        let Term::Key(a, k) = key else {
            return Atom::Nothing;
        };
        if op != "=" || !all_values {
            return Atom::Pred(a, pred(k, PredicateOp::Other, None));
        }
        self.in_params(items.iter().copied(), a, &k);
        if let [single] = items.as_slice() {
            return Atom::Pred(a, compare("=", k, expr::constant(single)));
        }
        Atom::Pred(
            a,
            pred(
                k,
                PredicateOp::In {
                    values: Some(items.len()),
                },
                None,
            ),
        )
    }

    /// `k LIKE 'abc%'` searches a prefix; ILIKE and `LIKE $1` only read, as a
    /// [`PredicateOp::Pattern`] that says why; any other LIKE (a leading wildcard, NOT LIKE)
    /// only reads, as [`PredicateOp::Other`].
    fn like(&mut self, op: &str, l: &Node, r: &Node) -> Atom {
        let pattern = expr::string_value(r);
        let prefix = op == "~~" && pattern.is_some_and(expr::like_prefix);
        match (self.term(l), self.term(r)) {
            (Term::Key(a, k), Term::Value(c)) if prefix => {
                Atom::Pred(a, pred(k, PredicateOp::LikePrefix, c))
            }
            (Term::Key(a, k), Term::Value(_)) => {
                self.param(r, ParamRole::Pattern, a, &k);
                let why = match op {
                    "~~*" => Some(PatternLimit::CaseInsensitive),
                    "~~" if pattern.is_none() && expr::is_parameter(r) => {
                        Some(PatternLimit::Parameter)
                    }
                    _ => None,
                };
                let op = why.map_or(PredicateOp::Other, |why| PredicateOp::Pattern { why });
                Atom::Pred(a, pred(k, op, None))
            }
            (Term::Key(a, k), _) => {
                self.param(r, ParamRole::Pattern, a, &k);
                Atom::Pred(a, pred(k, PredicateOp::Other, None))
            }
            _ => Atom::Nothing,
        }
    }

    fn between(&mut self, l: &Node, r: &Node) -> Atom {
        let values = matches!(self.term(r), Term::Value(_));
        match self.term(l) {
            Term::Key(a, k) if values => {
                if let Some(NodeEnum::List(bounds)) = r.node.as_ref() {
                    let roles = [ParamRole::BetweenLow, ParamRole::BetweenHigh];
                    for (bound, role) in bounds.items.iter().zip(roles) {
                        self.param(bound, role, a, &k);
                    }
                }
                Atom::Pred(
                    a,
                    pred(
                        k,
                        PredicateOp::Range {
                            lower: true,
                            upper: true,
                        },
                        None,
                    ),
                )
            }
            Term::Key(a, k) => Atom::Pred(a, pred(k, PredicateOp::Other, None)),
            _ => Atom::Nothing,
        }
    }

    /// Records `node` as a use of its `$n` compared with `key` of access `a`, when it is a
    /// parameter.
    fn param(&mut self, node: &Node, role: ParamRole, a: usize, key: &KeyExpr) {
        let Some(number) = expr::param_number(node) else {
            return;
        };
        let access = &self.shape.accesses[a];
        let key = Some(ParamKey {
            schema: access.schema.clone(),
            table: access.table.clone(),
            key: key.clone(),
        });
        self.shape.params.push(ParamUse { number, role, key });
    }

    /// The parameters of an IN list (or `ANY(ARRAY[..])`), each with its position.
    fn in_params<'n>(
        &mut self,
        items: impl IntoIterator<Item = &'n Node>,
        a: usize,
        key: &KeyExpr,
    ) {
        for (position, item) in items.into_iter().enumerate() {
            self.param(item, ParamRole::InItem { position }, a, key);
        }
    }

    /// EXISTS, `IN (SELECT ..)`, scalar subqueries: walked with their own query level;
    /// `k IN (SELECT col FROM t ..)` also joins k with the table column.
    fn sublink(&mut self, s: &pb::SubLink) -> Atom {
        let out = s.subselect.as_deref().and_then(|q| self.nested(q));
        let Some(test) = s.testexpr.as_deref() else {
            return Atom::Nothing;
        };
        let key = self.term(test);
        let equality = s.sub_link_type() == pb::SubLinkType::AnySublink
            && matches!(expr::last_name(&s.oper_name), "" | "=");
        let inner = out.and_then(|cols| match cols.as_slice() {
            [single] => single.source.clone(),
            _ => None,
        });
        match (key, inner) {
            (Term::Key(a, KeyExpr::Column { name }), Some(side)) if equality => {
                Atom::Join(vec![(a, name), side])
            }
            (Term::Key(a, KeyExpr::Column { name }), None) if equality => {
                Atom::Join(vec![(a, name)])
            }
            _ => Atom::Nothing,
        }
    }
}

fn pred(key: KeyExpr, op: PredicateOp, constant: Option<String>) -> Predicate {
    Predicate { key, op, constant }
}

/// `key op value`, the key on the left.
fn compare(op: &str, key: KeyExpr, constant: Option<String>) -> Predicate {
    let op = match op {
        "=" => match constant.as_deref() {
            Some("true") => PredicateOp::Bool { value: true },
            Some("false") => PredicateOp::Bool { value: false },
            _ => PredicateOp::Eq,
        },
        "<" | "<=" => PredicateOp::Range {
            lower: false,
            upper: true,
        },
        ">" | ">=" => PredicateOp::Range {
            lower: true,
            upper: false,
        },
        _ => PredicateOp::Other,
    };
    pred(key, op, constant)
}

/// What a parameter compared by `op` (the key on the left) stands for.
fn role_of(op: &str) -> ParamRole {
    match op {
        "<" | "<=" => ParamRole::Upper,
        ">" | ">=" => ParamRole::Lower,
        _ => ParamRole::Eq,
    }
}

/// The operator with its sides swapped (`5 < k` is `k > 5`).
fn flip(op: &str) -> &str {
    match op {
        "<" => ">",
        "<=" => ">=",
        ">" => "<",
        ">=" => "<=",
        other => other,
    }
}

/// An equality between columns of two relations (the second one a derived relation's
/// column when None): join keys on the column sides.
fn join(op: &str, left: (usize, KeyExpr), right: Option<(usize, KeyExpr)>) -> Atom {
    if op != "=" {
        return Atom::Nothing;
    }
    let mut sides = Vec::new();
    for (a, k) in std::iter::once(left).chain(right) {
        if let KeyExpr::Column { name } = k {
            sides.push((a, name));
        }
    }
    Atom::Join(sides)
}

/// The ANDed parts of a condition.
fn conjuncts(node: &Node) -> Vec<&Node> {
    match node.node.as_ref() {
        Some(NodeEnum::BoolExpr(b)) if b.boolop() == pb::BoolExprType::AndExpr => {
            b.args.iter().flat_map(conjuncts).collect()
        }
        _ => vec![node],
    }
}

/// `k = 1 OR k = 2 OR k IN (3, 4)`: one IN over the key.
fn as_in_list(alternatives: &[Vec<Predicate>]) -> Option<Predicate> {
    let mut key = None;
    let mut values = Some(0);
    for alt in alternatives {
        let [p] = alt.as_slice() else {
            return None;
        };
        let n = match p.op {
            PredicateOp::Eq => Some(1),
            PredicateOp::In { values } => values,
            _ => return None,
        };
        if key.is_some_and(|k| k != &p.key) {
            return None;
        }
        key = Some(&p.key);
        values = values.zip(n).map(|(a, b)| a + b);
    }
    key.map(|k| pred(k.clone(), PredicateOp::In { values }, None))
}
