//! `pgopt tune`: settings advice. Today the calculator mode (no target) with `--method
//! pgtune`; the live-server mode (detected inputs, evidence-driven `--method pgopt`) plugs
//! into [`raw_input`] and [`run`] later.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{TargetArgs, EXIT_OK};
use crate::error::Error;
use crate::report::Format;
use crate::tune::{self, pgtune, DataSize, Os, Profile, RawInput, Storage, TuneInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Evidence-driven: PGTune's baseline changed where the server's statistics contradict it.
    Pgopt,
    /// Exactly what PGTune's calculator recommends for the same inputs.
    Pgtune,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// A postgresql.conf include file: `name = value  # reason`.
    Conf,
    /// ALTER SYSTEM SET statements.
    Sql,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// How to compute the recommendation.
    #[arg(long, value_enum, default_value = "pgopt")]
    method: Method,
    /// Total memory of the server: a whole number with MB, GB or TB (e.g. 16GB; at least 512MB).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory: Option<String>,
    /// Number of CPUs (cores) of the server.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    cpus: Option<u32>,
    /// Storage the data lives on [default: ssd].
    #[arg(long, value_enum)]
    storage: Option<Storage>,
    /// Operating system of the server [default: linux].
    #[arg(long, value_enum)]
    os: Option<Os>,
    /// max_connections to plan for (at least 20) [default: the profile's].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    max_connections: Option<u32>,
    /// Total data size against memory [default: up-to-3x-ram].
    #[arg(long, value_enum)]
    data_size: Option<DataSize>,
    /// PostgreSQL major version, 10 to 18 [default: 18].
    #[arg(long, value_name = "VERSION", allow_hyphen_values = true)]
    pg_version: Option<u32>,
    /// Workload profile [default: web].
    #[arg(long, value_enum)]
    profile: Option<Profile>,
    /// Output format of the report (ignored with --emit).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Print a postgresql.conf include file or ALTER SYSTEM statements instead of the report.
    #[arg(long, value_enum)]
    emit: Option<Emit>,
    /// Write the output to this file (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The inputs as given; detection from a live server will fill the gaps here.
fn raw_input(args: &TuneArgs) -> RawInput {
    RawInput {
        memory: args.memory.clone(),
        cpus: args.cpus,
        connections: args.max_connections,
        pg_version: args.pg_version,
        os: args.os,
        profile: args.profile,
        storage: args.storage,
        data_size: args.data_size,
    }
}

pub fn run(args: TuneArgs) -> anyhow::Result<u8> {
    if args.target.dsn.is_some() || args.target.discover.is_some() {
        return Err(Error::BadInput(
            "pgopt tune does not read a server yet (the live-server mode, with detected \
             inputs, lands later). Run it as a calculator without a target: \
             pgopt tune --method pgtune --memory 16GB --cpus 8 ..."
                .into(),
        )
        .into());
    }
    if args.method == Method::Pgopt {
        return Err(Error::BadInput(
            "--method pgopt (the default) changes PGTune's baseline with evidence from a \
             server's statistics; that mode needs a target and lands later. Without a \
             server, use --method pgtune for PGTune's recommendation"
                .into(),
        )
        .into());
    }
    let input = TuneInput::validate(&raw_input(&args))?;
    let out = pgtune::pgtune(&input);
    let text = match (args.emit, args.format) {
        (Some(Emit::Conf), _) => tune::render::conf(&input, &out),
        (Some(Emit::Sql), _) => tune::render::sql(&input, &out),
        (None, Format::Table) => tune::render::table(&input, &out),
        (None, Format::Json) => tune::render::json(&input, &out),
        (None, Format::Markdown) => tune::render::markdown(&input, &out),
    };
    match &args.output {
        Some(path) => {
            write_atomically(path, &text)?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(EXIT_OK)
}

/// Writes a temporary file next to `path` and renames it over `path`: readers see the old
/// file or the new one, never half of it.
fn write_atomically(path: &Path, text: &str) -> crate::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".pgopt-tune-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
