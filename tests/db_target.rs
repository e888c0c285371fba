//! Target resolution through the public API, the way the CLI calls it (no server needed).

use std::collections::HashMap;

use pgopt::db::{SslMode, Target, TargetRole};

fn env_of(vars: &[(&str, &str)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn resolve_takes_an_env_closure() {
    let vars = env_of(&[
        ("PGHOST", "a.example,b.example"),
        ("PGPORT", "5433,5434"),
        ("PGUSER", "app"),
        ("PGPASSWORD", "pw-from-env"),
        ("PGTARGETSESSIONATTRS", "standby"),
    ]);
    let env = |name: &str| vars.get(name).cloned();
    let t = Target::resolve(Some("dbname=governance sslmode=disable"), &env).unwrap();
    assert_eq!(
        t.display_safe(),
        "app@a.example:5433,b.example:5434/governance"
    );
    assert_eq!(t.role, TargetRole::Standby);
    assert_eq!(t.ssl_mode, SslMode::Disable);
    assert!(!format!("{t:?}").contains("pw-from-env"));
    let mut t = t;
    t.set_single_host("c.example", 6000);
    assert_eq!(t.display_safe(), "app@c.example:6000/governance");
}

#[test]
fn bad_dsns_are_bad_input_without_the_password() {
    let env = |_: &str| None;
    for dsn in [
        "host=h password=p4ssw0rd-x junk",
        "host=h password='p4ssw0rd-x",
        "postgresql://u:p4ssw0rd-x@h:99999/db",
        "postgresql://u:p4ssw0rd-x@[::1/db",
        "postgresql://u:p4ssw0rd-x@h/db?nosuchkey=1",
        "host=a,b port=1,2,3 password=p4ssw0rd-x",
    ] {
        let e = Target::resolve(Some(dsn), &env).unwrap_err();
        assert!(e.is_bad_input(), "{dsn}: {e:?}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains("p4ssw0rd-x"), "{dsn}: {text}");
    }
}
