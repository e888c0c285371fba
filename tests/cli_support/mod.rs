//! Running the `pgopt` binary from tests, with none of the developer's PG* variables steering
//! where it connects.

#![allow(dead_code)]

use std::process::{Command, Output};

/// `pgopt ARGS`, ready to run.
pub fn pgopt_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgopt"));
    cmd.args(args);
    for v in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGDATABASE",
        "PGSERVICE",
        "PGUSER",
        "PGPASSWORD",
    ] {
        cmd.env_remove(v);
    }
    cmd
}

/// Runs `pgopt ARGS` to the end.
pub fn pgopt(args: &[&str]) -> Output {
    pgopt_cmd(args).output().expect("run pgopt")
}

/// Runs `pgopt tune ARGS` to the end.
pub fn pgopt_tune(args: &[&str]) -> Output {
    pgopt(&[&["tune"][..], args].concat())
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
