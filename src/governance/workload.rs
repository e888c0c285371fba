//! The governance operations `pgopt bench` runs: the access paths ACGS depends on, each one
//! parameterised statement with a generator that draws parameters the seeded data answers
//! (names derived from ids, the same power-law popularity as the generator, time windows
//! ending at the newest seeded row).
//!
//! Building the workload reads a few maximum ids (primary-key lookups) once; the generators
//! then never touch the server. The schema name enters the SQL here, once, through
//! [`QualifiedName`](crate::ident::QualifiedName).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::SmallRng;
use rand::Rng;
use tokio_postgres::types::Type;

use super::dist::{self, Popularity};
use super::qualified;
use super::seed::PRINCIPLES;
use crate::bench::{OpKind, Operation, Param, Workload};
use crate::db::Conn;
use crate::error::{Error, Result};

/// The balance of reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mix {
    /// About 90 % reads: the platform in daily use.
    #[default]
    ReadHeavy,
    /// About 55 % writes: an incident or a bulk import.
    WriteHeavy,
}

impl FromStr for Mix {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "read-heavy" => Ok(Mix::ReadHeavy),
            "write-heavy" => Ok(Mix::WriteHeavy),
            other => Err(Error::BadInput(format!(
                "unknown mix {other:?}: use read-heavy or write-heavy"
            ))),
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mix::ReadHeavy => "read-heavy",
            Mix::WriteHeavy => "write-heavy",
        })
    }
}

/// Weights (read-heavy, write-heavy) per operation; each column sums to 100.
const WEIGHTS: &[(&str, u32, u32)] = &[
    ("authenticate_by_email", 25, 12),
    ("login_by_username", 20, 10),
    ("policy_rule_by_name", 15, 8),
    ("user_security_events", 10, 6),
    ("resource_audit_trail", 10, 5),
    ("compliance_report", 4, 2),
    ("workflow_dashboard", 6, 2),
    ("record_security_event", 3, 18),
    ("append_audit_log", 3, 18),
    ("update_last_login", 2, 10),
    ("start_workflow", 1, 5),
    ("advance_workflow", 1, 4),
];

fn weight(name: &str, mix: Mix) -> u32 {
    WEIGHTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, r, w)| match mix {
            Mix::ReadHeavy => *r,
            Mix::WriteHeavy => *w,
        })
        .unwrap_or(0)
}

/// What the generators need to know about the seeded data.
#[derive(Debug, Clone, Copy)]
pub struct DataShape {
    pub users: u64,
    pub policy_rules: u64,
    pub workflows: u64,
    pub compliance_checks: u64,
    /// The newest seeded security event; the "now" of the data.
    pub as_of: DateTime<Utc>,
}

/// Reads the shape of the seeded data: maximum ids (primary-key lookups) and the newest
/// event. Fails with the next step when the tables are empty.
pub async fn data_shape(conn: &Conn, schema: &str) -> Result<DataShape> {
    let mut max = Vec::new();
    for table in [
        "users",
        "policy_rules",
        "governance_workflows",
        "compliance_checks",
        "security_events",
    ] {
        let q = qualified(schema, table);
        let id: Option<i64> = conn
            .query_one(
                "reading the governance id ranges",
                &format!("SELECT max(id)::bigint FROM {q}"),
                &[],
            )
            .await
            .map_err(|e| match e.sqlstate() {
                Some(c)
                    if *c == tokio_postgres::error::SqlState::UNDEFINED_TABLE
                        || *c == tokio_postgres::error::SqlState::INVALID_SCHEMA_NAME =>
                {
                    Error::BadInput(format!(
                        "there is no governance table {q}: deploy and seed it first \
                         (`pgopt governance deploy --schema {schema}`, then \
                         `pgopt governance seed --schema {schema} --scale 0.1`)"
                    ))
                }
                _ => e,
            })?
            .get(0);
        match id {
            Some(id) if id > 0 => max.push(id as u64),
            _ => {
                return Err(Error::BadInput(format!(
                    "table {q} is empty: seed the governance database first \
                     (`pgopt governance seed --schema {schema} --scale 0.1`)"
                )))
            }
        }
    }
    let newest: DateTime<Utc> = conn
        .query_one(
            "reading the newest security event",
            &format!(
                "SELECT occurred_at FROM {} WHERE id = $1",
                qualified(schema, "security_events")
            ),
            &[&(max[4] as i64)],
        )
        .await?
        .get(0);
    // Rows after the end of the seeded span are the workload's own writes.
    let as_of = newest.min(dist::data_end());
    Ok(DataShape {
        users: max[0],
        policy_rules: max[1],
        workflows: max[2],
        compliance_checks: max[3],
        as_of,
    })
}

/// The governance workload over the seeded tables of `schema`.
pub async fn governance_workload(conn: &Conn, schema: &str, mix: Mix) -> Result<Workload> {
    let shape = data_shape(conn, schema).await?;
    workload_for(&shape, schema, mix)
}

fn op(
    name: &str,
    kind: OpKind,
    mix: Mix,
    sql: String,
    param_types: Vec<Type>,
    params: impl Fn(&mut SmallRng) -> Vec<Param> + Send + Sync + 'static,
) -> Operation {
    Operation {
        name: name.to_string(),
        kind,
        sql,
        param_types,
        weight: weight(name, mix),
        params: Arc::new(params),
    }
}

/// The operations for known data; no I/O.
pub fn workload_for(shape: &DataShape, schema: &str, mix: Mix) -> Result<Workload> {
    let users_t = qualified(schema, "users");
    let rules_t = qualified(schema, "policy_rules");
    let principles_t = qualified(schema, "constitutional_principles");
    let events_t = qualified(schema, "security_events");
    let audit_t = qualified(schema, "audit_logs");
    let workflows_t = qualified(schema, "governance_workflows");
    let checks_t = qualified(schema, "compliance_checks");

    let all_users = shape.users;
    let users = Popularity::new(shape.users, dist::USER_SKEW);
    let rules = Popularity::new(shape.policy_rules, dist::RULE_SKEW);
    let resources = dist::Resources::new(
        shape.users,
        shape.policy_rules,
        shape.workflows,
        PRINCIPLES,
        shape.compliance_checks,
    );
    let workflows = shape.workflows;
    let as_of = shape.as_of;
    let window = move |rng: &mut SmallRng, days: &[i64]| -> DateTime<Utc> {
        as_of - Duration::days(days[rng.gen_range(0..days.len())])
    };

    let ops = vec![
        // ---- basic lookups ----
        op(
            "authenticate_by_email",
            OpKind::Read,
            mix,
            format!(
                "SELECT id, username, role, last_login_at FROM {users_t} \
                 WHERE email = $1 AND is_active"
            ),
            vec![Type::TEXT],
            move |rng| vec![Box::new(dist::email(rng.gen_range(1..=all_users) as i32))],
        ),
        op(
            "login_by_username",
            OpKind::Read,
            mix,
            format!(
                "SELECT id, email, role, last_login_at FROM {users_t} \
                 WHERE username = $1 AND is_active"
            ),
            vec![Type::TEXT],
            move |rng| {
                vec![Box::new(
                    dist::username(rng.gen_range(1..=all_users) as i32),
                )]
            },
        ),
        op(
            "policy_rule_by_name",
            OpKind::Read,
            mix,
            format!(
                "SELECT id, version, enforcement, principle_id, rule_body FROM {rules_t} \
                 WHERE name = $1 AND is_active"
            ),
            vec![Type::TEXT],
            move |rng| vec![Box::new(dist::rule_name(rules.sample(rng) as i32))],
        ),
        // ---- complex reads ----
        op(
            "user_security_events",
            OpKind::Read,
            mix,
            format!(
                "SELECT id, event_type, severity, source_ip, occurred_at, details FROM {events_t} \
                 WHERE user_id = $1 AND occurred_at >= $2 \
                 ORDER BY occurred_at DESC LIMIT $3"
            ),
            vec![Type::INT4, Type::TIMESTAMPTZ, Type::INT8],
            move |rng| {
                vec![
                    Box::new(users.sample(rng) as i32),
                    Box::new(window(rng, &[7, 30, 90])),
                    Box::new(100i64),
                ]
            },
        ),
        op(
            "resource_audit_trail",
            OpKind::Read,
            mix,
            format!(
                "SELECT id, actor_id, occurred_at, payload FROM {audit_t} \
                 WHERE resource_type = $1 AND resource_id = $2 AND action = $3 \
                 ORDER BY occurred_at DESC LIMIT 50"
            ),
            vec![Type::TEXT, Type::INT8, Type::TEXT],
            move |rng| {
                let (rtype, id) = resources.sample(rng);
                vec![
                    Box::new(rtype.to_string()),
                    Box::new(id),
                    Box::new(dist::weighted(rng, dist::ACTIONS).to_string()),
                ]
            },
        ),
        op(
            "compliance_report",
            OpKind::Read,
            mix,
            format!(
                "SELECT p.code, p.title, r.enforcement, count(*) AS checks, \
                        count(*) FILTER (WHERE c.result = 'fail') AS failures, \
                        round(avg(c.score)::numeric, 2)::float8 AS avg_score, \
                        max(c.checked_at) AS last_checked \
                 FROM {checks_t} c \
                 JOIN {rules_t} r ON r.id = c.policy_rule_id \
                 JOIN {principles_t} p ON p.id = r.principle_id \
                 WHERE c.checked_at >= $1 AND r.is_active \
                 GROUP BY p.code, p.title, r.enforcement \
                 ORDER BY failures DESC, p.code LIMIT 20"
            ),
            vec![Type::TIMESTAMPTZ],
            move |rng| vec![Box::new(window(rng, &[1, 7]))],
        ),
        op(
            "workflow_dashboard",
            OpKind::Read,
            mix,
            format!(
                "WITH recent AS ( \
                     SELECT id, kind, status, title, updated_at FROM {workflows_t} \
                     WHERE updated_at >= $1) \
                 SELECT c.kind, c.status, c.n, l.id AS latest_id, l.title AS latest_title, \
                        l.updated_at AS latest_at \
                 FROM (SELECT kind, status, count(*) AS n FROM recent GROUP BY kind, status) c \
                 JOIN (SELECT DISTINCT ON (kind) kind, id, title, updated_at FROM recent \
                       ORDER BY kind, updated_at DESC, id DESC) l USING (kind) \
                 ORDER BY c.kind, c.status"
            ),
            vec![Type::TIMESTAMPTZ],
            move |rng| vec![Box::new(window(rng, &[7, 30]))],
        ),
        // ---- writes ----
        op(
            "record_security_event",
            OpKind::Write,
            mix,
            format!(
                "INSERT INTO {events_t} (user_id, event_type, severity, source_ip, details) \
                 VALUES ($1, $2, $3, $4, $5)"
            ),
            vec![Type::INT4, Type::TEXT, Type::TEXT, Type::INET, Type::JSONB],
            move |rng| {
                let user = users.sample(rng) as u32;
                let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                    10,
                    (user >> 8) as u8,
                    user as u8,
                    rng.gen_range(1..=254),
                ));
                vec![
                    Box::new(user as i32),
                    Box::new(dist::weighted(rng, dist::EVENT_TYPES).to_string()),
                    Box::new(dist::weighted(rng, dist::SEVERITIES).to_string()),
                    Box::new(ip),
                    Box::new(serde_json::json!({
                        "session": format!("{:016x}", rng.gen::<u64>()),
                        "user_agent": "pgopt-bench",
                        "mfa": rng.gen_bool(0.7),
                    })),
                ]
            },
        ),
        op(
            "append_audit_log",
            OpKind::Write,
            mix,
            format!(
                "INSERT INTO {audit_t} (actor_id, resource_type, resource_id, action, payload) \
                 VALUES ($1, $2, $3, $4, $5)"
            ),
            vec![Type::INT4, Type::TEXT, Type::INT8, Type::TEXT, Type::JSONB],
            move |rng| {
                let (rtype, id) = resources.sample(rng);
                vec![
                    Box::new(users.sample(rng) as i32),
                    Box::new(rtype.to_string()),
                    Box::new(id),
                    Box::new(dist::weighted(rng, dist::ACTIONS).to_string()),
                    Box::new(serde_json::json!({
                        "request_id": format!("{:016x}", rng.gen::<u64>()),
                        "client": "api",
                        "changed_fields": rng.gen_range(0..8),
                    })),
                ]
            },
        ),
        op(
            "update_last_login",
            OpKind::Write,
            mix,
            format!("UPDATE {users_t} SET last_login_at = now() WHERE id = $1"),
            vec![Type::INT4],
            move |rng| vec![Box::new(users.sample(rng) as i32)],
        ),
        op(
            "start_workflow",
            OpKind::Write,
            mix,
            format!(
                "INSERT INTO {workflows_t} (kind, title, initiator_id, policy_rule_id, payload) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id"
            ),
            vec![Type::TEXT, Type::TEXT, Type::INT4, Type::INT4, Type::JSONB],
            move |rng| {
                let kind = dist::weighted(rng, dist::WORKFLOW_KINDS);
                let rule: Option<i32> =
                    kind.starts_with("policy").then(|| rules.sample(rng) as i32);
                vec![
                    Box::new(kind.to_string()),
                    Box::new(format!("{} (bench)", kind.replace('_', " "))),
                    Box::new(users.sample(rng) as i32),
                    Box::new(rule),
                    Box::new(serde_json::json!({"priority": "normal", "reviewers": 2})),
                ]
            },
        ),
        op(
            "advance_workflow",
            OpKind::Write,
            mix,
            format!(
                "UPDATE {workflows_t} SET \
                     status = CASE status WHEN 'draft' THEN 'review' WHEN 'review' THEN $2 \
                                          WHEN 'approved' THEN 'archived' \
                                          WHEN 'rejected' THEN 'archived' ELSE status END, \
                     updated_at = greatest(now(), updated_at) \
                 WHERE id = $1"
            ),
            vec![Type::INT8, Type::TEXT],
            move |rng| {
                let decision = if rng.gen_bool(0.75) {
                    "approved"
                } else {
                    "rejected"
                };
                vec![
                    Box::new(rng.gen_range(1..=workflows) as i64),
                    Box::new(decision.to_string()),
                ]
            },
        ),
    ];
    Workload::new(format!("governance ({mix})"), ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn shape() -> DataShape {
        DataShape {
            users: 100,
            policy_rules: 50,
            workflows: 1000,
            compliance_checks: 5000,
            as_of: dist::data_end(),
        }
    }

    #[test]
    fn mixes_parse_and_balance_reads_and_writes() {
        assert_eq!("read-heavy".parse::<Mix>().unwrap(), Mix::ReadHeavy);
        assert_eq!("write-heavy".parse::<Mix>().unwrap(), Mix::WriteHeavy);
        assert!("both".parse::<Mix>().unwrap_err().is_bad_input());
        assert_eq!(Mix::default().to_string(), "read-heavy");
        for (mix, min_write, max_write) in [(Mix::ReadHeavy, 5, 15), (Mix::WriteHeavy, 50, 70)] {
            let w = workload_for(&shape(), "governance", mix).unwrap();
            let total: u32 = w.scripts.iter().map(|o| o.weight).sum();
            let writes: u32 = w
                .scripts
                .iter()
                .filter(|o| o.kind == OpKind::Write)
                .map(|o| o.weight)
                .sum();
            let pct = writes * 100 / total;
            assert!((min_write..=max_write).contains(&pct), "{mix}: {pct} %");
            assert_eq!(w.scripts.len(), 12);
            assert!(w.scripts.iter().all(|o| o.weight > 0));
        }
    }

    #[test]
    fn parameters_match_the_declared_types_in_number() {
        let w = workload_for(&shape(), r#"x"; DROP TABLE users; --"#, Mix::ReadHeavy).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        for s in &w.scripts {
            let o = &s.statements[0];
            let crate::bench::workload::Binds::Generated(params) = &o.binds else {
                panic!("{}: an operation has its own generator", o.name)
            };
            assert_eq!(params(&mut rng).len(), o.param_types.len(), "{}", o.name);
            assert!(
                o.sql.contains(r#""x""; DROP TABLE users; --"."#),
                "{}",
                o.sql
            );
        }
    }
}
