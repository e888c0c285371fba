use std::process::ExitCode;

fn main() -> ExitCode {
    pgopt::cli::run()
}
