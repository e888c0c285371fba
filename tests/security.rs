//! The security review on real clusters: one made insecure on purpose (trust and md5 lines in
//! pg_hba.conf, MD5-stored passwords, a second superuser, a login role without a password) is
//! found out rule by rule; a default local-only cluster passes it.
//!
//! listen_addresses stays on loopback here (the test must not open this machine to the
//! network); ssl_off and listen_all_addresses are covered on built snapshots in advise_rules.

use std::io::Write;

use pgopt::advise::{security_review, Finding, Severity};
use pgopt::collect::{collect, CollectOptions};
use pgopt::db::{self, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::snapshot::{PasswordKind, SectionState, Snapshot, TargetInfo};

async fn snapshot(dsn: &str) -> Snapshot {
    let conn = db::connect(&Target::parse(dsn).unwrap()).await.unwrap();
    let target = TargetInfo {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
    };
    collect(&conn, target, &CollectOptions::default())
        .await
        .unwrap()
}

fn of<'a>(findings: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.rule == rule).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_cluster_is_found_out_rule_by_rule() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![("password_encryption".into(), "'md5'".into())],
        ..Default::default()
    })
    .unwrap();
    {
        let hba = c.data_dir().join("pg_hba.conf");
        let mut f = std::fs::OpenOptions::new().append(true).open(&hba).unwrap();
        f.write_all(b"\nhost all all 0.0.0.0/0 trust\nhost all all 10.0.0.0/8 md5\n")
            .unwrap();
    }
    c.psql(
        "postgres",
        "SELECT pg_reload_conf();
         SET password_encryption = 'md5';
         CREATE ROLE legacy LOGIN PASSWORD 'legacy-secret';
         CREATE ROLE nopass LOGIN;
         CREATE ROLE admin2 SUPERUSER LOGIN PASSWORD 'admin2-secret';
         CREATE ROLE readers NOLOGIN;",
    )
    .unwrap();
    let hash = c
        .psql(
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'legacy'",
        )
        .unwrap();
    assert!(hash.starts_with("md5"), "{hash}");

    let snap = snapshot(&c.dsn("postgres")).await;
    for name in ["hba_rules", "roles"] {
        assert_eq!(
            snap.section(name).unwrap().state,
            SectionState::Collected,
            "{name}"
        );
    }
    // The snapshot keeps how passwords are stored, never the hashes.
    let json = snap.to_json().unwrap();
    assert!(
        !json.contains(&hash),
        "the md5 hash leaked into the snapshot"
    );
    assert!(!json.contains("SCRAM-SHA-256$"), "a SCRAM verifier leaked");
    let roles = snap.roles.as_ref().unwrap();
    let kind = |n: &str| roles.iter().find(|r| r.name == n).unwrap().password;
    assert_eq!(kind("legacy"), Some(PasswordKind::Md5));
    assert_eq!(kind("nopass"), Some(PasswordKind::Missing));

    let review = security_review(&snap);
    let rules: Vec<&str> = review.iter().map(|f| f.rule.as_str()).collect();

    let pe = of(&review, "password_encryption_weak");
    assert_eq!(pe.len(), 1, "{review:#?}");
    assert_eq!(pe[0].evidence["password_encryption"], "md5");

    let hba = snap.hba_rules.as_ref().unwrap();
    let open_line = hba
        .iter()
        .find(|r| r.address.as_deref() == Some("0.0.0.0"))
        .expect("the 0.0.0.0/0 line is parsed")
        .line_number;
    let md5_line = hba
        .iter()
        .find(|r| r.address.as_deref() == Some("10.0.0.0"))
        .expect("the 10.0.0.0/8 line is parsed")
        .line_number;

    let trust = of(&review, "hba_trust");
    assert_eq!(trust.len(), 1, "only the remote trust line: {review:#?}");
    assert_eq!(trust[0].object, format!("pg_hba.conf line {open_line}"));
    assert_eq!(trust[0].severity, Severity::Critical);

    let open = of(&review, "hba_open_to_all");
    assert_eq!(open.len(), 1, "{review:#?}");
    assert_eq!(open[0].object, format!("pg_hba.conf line {open_line}"));
    assert_eq!(open[0].severity, Severity::Critical);

    let weak = of(&review, "hba_weak_password_method");
    assert_eq!(weak.len(), 1, "{review:#?}");
    assert_eq!(weak[0].object, format!("pg_hba.conf line {md5_line}"));
    assert_eq!(weak[0].severity, Severity::Warning);

    let su = of(&review, "superuser_roles");
    assert_eq!(su.len(), 1, "{review:#?}");
    assert_eq!(su[0].evidence["superusers"], serde_json::json!(["admin2"]));
    assert_eq!(
        su[0].sql.as_deref(),
        Some("ALTER ROLE \"admin2\" NOSUPERUSER;")
    );

    let np = of(&review, "login_without_password");
    assert_eq!(np.len(), 1, "{review:#?}");
    let names: Vec<&str> = np[0].evidence["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(names.contains(&"nopass"), "{names:?}");
    assert!(!names.contains(&"readers") && !names.contains(&"legacy"));

    // admin2 got its password under the cluster's password_encryption = 'md5' too.
    let md5: Vec<&str> = of(&review, "md5_passwords")
        .iter()
        .map(|f| f.object.as_str())
        .collect();
    assert_eq!(md5, ["role admin2", "role legacy"], "{review:#?}");

    // Listening on loopback only: neither ssl_off nor listen_all_addresses.
    assert!(!rules.contains(&"ssl_off") && !rules.contains(&"listen_all_addresses"));
    // Critical first.
    assert_eq!(review[0].severity, Severity::Critical);

    // `pgopt tune` prints the same review beside its settings (issue 4, part 4).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pgopt"))
        .args([
            "tune",
            &c.dsn("postgres"),
            "--method",
            "pgtune",
            "--memory",
            "4GB",
            "--cpus",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Security review"), "{out}");
    for rule in ["hba_trust", "md5_passwords", "superuser_roles"] {
        assert!(
            out.contains(rule),
            "{rule} missing from tune's report:\n{out}"
        );
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pgopt"))
        .args([
            "tune",
            &c.dsn("postgres"),
            "--method",
            "pgtune",
            "--memory",
            "4GB",
            "--cpus",
            "2",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["security"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "hba_open_to_all"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_cluster_passes_the_security_review() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let snap = snapshot(&c.dsn("postgres")).await;
    assert!(snap.hba_rules.as_ref().is_some_and(|h| !h.is_empty()));
    assert!(snap.roles.as_ref().is_some_and(|r| !r.is_empty()));
    let review = security_review(&snap);
    assert!(review.is_empty(), "{review:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_scram_passwords_over_tcp_passes_the_review() {
    // pgopt's own password option: scram-sha-256 on loopback, a SCRAM-stored password.
    let c = Cluster::start(ClusterOptions {
        password: Some("s3cret-pw".into()),
        ..Default::default()
    })
    .unwrap();
    let snap = snapshot(&c.dsn("postgres")).await;
    let roles = snap.roles.as_ref().unwrap();
    let pg = roles.iter().find(|r| r.name == "postgres").unwrap();
    assert_eq!(pg.password, Some(PasswordKind::ScramSha256));
    let review = security_review(&snap);
    assert!(review.is_empty(), "{review:#?}");
}

/// A pg_monitor role (no superuser) cannot read pg_hba_file_rules nor pg_authid: `pgopt tune`
/// and `pgopt analyze` both say those parts were not checked, with the grant, and nothing is
/// called sound. The grants named are the ones that work on this server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_monitor_role_gets_not_checked_not_sound() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE ROLE monitor LOGIN; GRANT pg_monitor TO monitor;",
    )
    .unwrap();
    let dsn = c
        .socket_dsn("postgres")
        .replace("user=postgres", "user=monitor");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_pgopt"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.code().is_some_and(|c| c <= 1),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let tune = [
        "tune", &dsn, "--method", "pgtune", "--memory", "4GB", "--cpus", "2",
    ];
    let out = run(&tune);
    assert!(!out.contains("look sound"), "{out}");
    assert!(
        out.contains(
            "NOT CHECKED: pg_hba.conf rules: pg_hba_file_rules is readable by superusers only"
        ),
        "{out}"
    );
    assert!(
        out.contains(r#"GRANT SELECT ON pg_catalog.pg_hba_file_rules TO "monitor"; GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO "monitor";"#),
        "{out}"
    );
    assert!(
        out.contains("NOT CHECKED: how role passwords are stored (MD5 or SCRAM): how passwords are stored is in pg_authid, readable by superusers only"),
        "{out}"
    );
    // What was read is named as such, and only that.
    let sound = out
        .lines()
        .find(|l| l.starts_with("Nothing to report in what was read:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        sound.contains("listen_addresses") && sound.contains("roles ("),
        "{sound}"
    );
    assert!(
        !sound.contains("pg_hba") && !sound.contains("passwords"),
        "{sound}"
    );

    let mut json_args = tune.to_vec();
    json_args.extend(["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&run(&json_args)).unwrap();
    let coverage = v["security_coverage"].as_array().unwrap();
    let part = |name: &str| {
        coverage
            .iter()
            .find(|p| p["part"] == name)
            .unwrap_or_else(|| panic!("{coverage:#?}"))
            .clone()
    };
    assert_eq!(part("pg_hba.conf rules")["checked"], false);
    assert_eq!(
        part("ssl, password_encryption and listen_addresses")["checked"],
        true
    );

    // analyze on the same role: the same two sections skipped, with the same grants.
    let a: serde_json::Value =
        serde_json::from_str(&run(&["analyze", &dsn, "--format", "json"])).unwrap();
    let sections = a["snapshot"]["sections"]
        .as_array()
        .unwrap_or_else(|| panic!("{a:#}"));
    let section = |name: &str| {
        sections
            .iter()
            .find(|s| s["section"] == name)
            .unwrap_or_else(|| panic!("{name}: {sections:#?}"))
            .clone()
    };
    assert_eq!(section("hba_rules")["state"], "skipped");
    assert_eq!(
        section("hba_rules")["next_step"],
        part("pg_hba.conf rules")["next_step"]
    );
    assert_eq!(section("role_passwords")["state"], "skipped");

    // The grants named are enough: with them the role reads pg_hba_file_rules.
    c.psql(
        "postgres",
        "GRANT SELECT ON pg_catalog.pg_hba_file_rules TO monitor; \
         GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO monitor;",
    )
    .unwrap();
    let snap = snapshot(&dsn).await;
    assert_eq!(
        snap.section("hba_rules").unwrap().state,
        SectionState::Collected
    );
    assert!(snap.hba_rules.as_ref().is_some_and(|h| !h.is_empty()));
    let out = run(&tune);
    assert!(!out.contains("NOT CHECKED: pg_hba.conf"), "{out}");
    assert!(out.contains("NOT CHECKED: how role passwords"), "{out}");
}

/// A superuser reads every part: the review says what it found sound, and nothing is
/// reported as not checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superuser_review_checks_every_part() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let snap = snapshot(&c.dsn("postgres")).await;
    let parts = pgopt::advise::review_coverage(&snap);
    assert!(parts.iter().all(|p| p.checked), "{parts:#?}");
    let text = pgopt::advise::review_coverage_text(&parts, true);
    assert!(
        text.starts_with("Nothing to report in what was read: "),
        "{text}"
    );
    assert!(!text.contains("NOT CHECKED"), "{text}");
}
