//! `pgopt tune`: the settings advisor. Pure: no I/O anywhere in this module (checked by
//! `tests/layering.rs`).
//!
//! This module holds the inputs every method shares (memory, CPUs, storage, OS, profile, data
//! size, version) with their parsing and validation, the PGTune-exact calculator
//! ([`pgtune`]), current-against-recommended comparison and value validation ([`compare`]),
//! and per-table and per-role settings as data ([`objects`]). [`storage`] maps the storage the
//! snapshot recorded under the data directory to a kind. [`advice`] is the entry point over a
//! snapshot: the inputs it shows ([`advice::detected`]), then [`advise`]: PGTune's baseline,
//! the evidence rules ([`evidence`], one rule per file in `rules/`) and the comparison with
//! the server's values. `crate::report::tune` renders the advice; the executor,
//! [`crate::apply`], changes the server (its `settings`, `objects` and `restart` files read and
//! check what tune's plan needs). No clap here: the command mirrors these enums
//! (`cli/tune.rs`).

pub mod advice;
pub mod compare;
pub mod evidence;
pub mod objects;
pub mod pgtune;
pub(crate) mod rules;
pub mod storage;

use std::fmt;

use serde::Serialize;

pub use advice::{advise, TuneAdvice};
pub(crate) use rules::table_scale_factors;

use crate::error::{Error, Result};

/// PGTune's smallest accepted memory (its form rejects less than 512MB).
pub const MIN_MEMORY_BYTES: u64 = 512 * MB;
/// PGTune's smallest accepted connection count.
pub const MIN_CONNECTIONS: u32 = 20;
/// The PostgreSQL versions PGTune's current form offers.
pub const PG_VERSIONS: std::ops::RangeInclusive<u32> = 10..=18;
/// PGTune's form caps CPUs and connections at 999999.
pub const MAX_COUNT: u32 = 999_999;

const MB: u64 = 1024 * 1024;
const GB: u64 = 1024 * MB;
const TB: u64 = 1024 * GB;

/// The unit a memory size was given in; kept so the output echoes the input as typed
/// (`# Total Memory (RAM): 1024 MB`, not `1 GB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MemoryUnit {
    #[serde(rename = "MB")]
    Mb,
    #[serde(rename = "GB")]
    Gb,
    #[serde(rename = "TB")]
    Tb,
}

impl MemoryUnit {
    fn bytes(self) -> u64 {
        match self {
            MemoryUnit::Mb => MB,
            MemoryUnit::Gb => GB,
            MemoryUnit::Tb => TB,
        }
    }

    fn label(self) -> &'static str {
        match self {
            MemoryUnit::Mb => "MB",
            MemoryUnit::Gb => "GB",
            MemoryUnit::Tb => "TB",
        }
    }
}

/// A total memory size: a whole number of MB, GB or TB, as PGTune's form takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub amount: u64,
    pub unit: MemoryUnit,
}

impl Memory {
    pub fn bytes(&self) -> u64 {
        self.amount * self.unit.bytes()
    }

    /// The size in kB, the unit all of PGTune's memory maths is done in.
    pub fn kb(&self) -> u64 {
        self.bytes() / 1024
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.unit.label())
    }
}

/// Parses `64GB`, `512MB`, `1TB`, `1.5GB` (unit case-insensitive, a space allowed before it).
///
/// PGTune's form takes whole numbers: a decimal GB or TB amount becomes whole MB or GB
/// (`1.5GB` is 1536 MB, rounded to the nearest MB). At least 512MB (PGTune's minimum).
pub fn parse_memory(text: &str) -> Result<Memory> {
    let bad = |why: &str| {
        Error::BadInput(format!(
            "--memory {text:?}: {why}. Give a number followed by MB, GB or TB, \
             e.g. --memory 16GB, --memory 1.5GB or --memory 512MB (at least 512MB)"
        ))
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| bad("no unit"))?;
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() || digits.starts_with('.') || digits.ends_with('.') {
        return Err(bad("not a number"));
    }
    let mut unit = match unit.trim_start().to_ascii_uppercase().as_str() {
        "MB" => MemoryUnit::Mb,
        "GB" => MemoryUnit::Gb,
        "TB" => MemoryUnit::Tb,
        _ => return Err(bad("unknown unit")),
    };
    let amount: u64 = match digits.split_once('.') {
        None => digits.parse().map_err(|_| bad("number too large"))?,
        Some(_) => {
            let value: f64 = digits.parse().map_err(|_| bad("not a number"))?;
            let (lower, in_lower) = match unit {
                MemoryUnit::Mb => return Err(bad("MB must be a whole number")),
                MemoryUnit::Gb => (MemoryUnit::Mb, value * 1024.0),
                MemoryUnit::Tb => (MemoryUnit::Gb, value * 1024.0),
            };
            if !in_lower.is_finite() || in_lower > u64::MAX as f64 / 2.0 {
                return Err(bad("number too large"));
            }
            unit = lower;
            in_lower.round() as u64
        }
    };
    let memory = Memory { amount, unit };
    if amount == 0 {
        return Err(bad("must be more than 0"));
    }
    match amount.checked_mul(unit.bytes()) {
        None => return Err(bad("number too large")),
        // Above 2^53 kB PGTune's JavaScript maths is no longer exact; nobody has that much.
        Some(b) if b / 1024 > (1u64 << 53) => return Err(bad("number too large")),
        Some(b) if b < MIN_MEMORY_BYTES => return Err(bad("less than 512MB, PGTune's minimum")),
        Some(_) => {}
    }
    Ok(memory)
}

/// The operating system the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Windows,
    Mac,
}

/// The workload profile. `Governance` is pgopt's own (the ACGS workload); PGTune has no such
/// type and its method treats it as `oltp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Web,
    Oltp,
    Dw,
    Desktop,
    Mixed,
    Governance,
}

/// The storage the data lives on (a snapshot records it, hence defined there).
pub use crate::snapshot::Storage;

/// How the recommendation is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Evidence-driven: PGTune's baseline changed where the server's statistics contradict it.
    Pgopt,
    /// Exactly what PGTune's calculator recommends for the same inputs.
    Pgtune,
}

/// Total data size against memory (PGTune's `dbSize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DataSize {
    #[serde(rename = "less-than-ram")]
    LessThanRam,
    #[serde(rename = "up-to-3x-ram")]
    UpTo3xRam,
    #[serde(rename = "more-than-3x-ram")]
    MoreThan3xRam,
}

macro_rules! names {
    ($ty:ty, $flag:literal, { $($variant:path => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name as the command line spells it.
            pub fn name(self) -> &'static str {
                match self { $($variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s.to_ascii_lowercase().as_str() {
                    $($name => Ok($variant),)+
                    _ => Err(Error::BadInput(format!(
                        concat!($flag, " {:?}: not one of {}"),
                        s,
                        [$($name),+].join(", ")
                    ))),
                }
            }
        }
    };
}

names!(Os, "--os", { Os::Linux => "linux", Os::Windows => "windows", Os::Mac => "mac" });
names!(Profile, "--profile", {
    Profile::Web => "web",
    Profile::Oltp => "oltp",
    Profile::Dw => "dw",
    Profile::Desktop => "desktop",
    Profile::Mixed => "mixed",
    Profile::Governance => "governance",
});
names!(Storage, "--storage", {
    Storage::Hdd => "hdd",
    Storage::Ssd => "ssd",
    Storage::San => "san",
    Storage::Nvme => "nvme",
});
names!(Method, "--method", { Method::Pgopt => "pgopt", Method::Pgtune => "pgtune" });
names!(DataSize, "--data-size", {
    DataSize::LessThanRam => "less-than-ram",
    DataSize::UpTo3xRam => "up-to-3x-ram",
    DataSize::MoreThan3xRam => "more-than-3x-ram",
});

/// Inputs as given on the command line (or, later, detected from the server); `None` means
/// "not given".
#[derive(Debug, Clone, Default)]
pub struct RawInput {
    pub memory: Option<String>,
    pub cpus: Option<u32>,
    pub connections: Option<u32>,
    pub pg_version: Option<u32>,
    pub os: Option<Os>,
    pub profile: Option<Profile>,
    pub storage: Option<Storage>,
    pub data_size: Option<DataSize>,
}

/// Validated inputs, shared by every method. Defaults are PGTune's (PG 18, linux, web, ssd,
/// data up to 3x RAM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TuneInput {
    pub pg_version: u32,
    pub os: Os,
    pub profile: Profile,
    pub memory: Memory,
    pub cpus: Option<u32>,
    pub connections: Option<u32>,
    pub storage: Storage,
    pub data_size: DataSize,
}

impl TuneInput {
    /// Validates raw inputs; every error names its flag and what is allowed.
    pub fn validate(raw: &RawInput) -> Result<TuneInput> {
        let memory = match &raw.memory {
            Some(m) => parse_memory(m)?,
            None => {
                return Err(Error::BadInput(
                    "--memory is required in calculator mode (no target): e.g. --memory 16GB"
                        .into(),
                ))
            }
        };
        if let Some(c) = raw.cpus {
            if c == 0 || c > MAX_COUNT {
                return Err(Error::BadInput(format!(
                    "--cpus {c}: give a number of CPUs from 1 to {MAX_COUNT}, or leave it out"
                )));
            }
        }
        if let Some(c) = raw.connections {
            if !(MIN_CONNECTIONS..=MAX_COUNT).contains(&c) {
                return Err(Error::BadInput(format!(
                    "--max-connections {c}: give {MIN_CONNECTIONS} to {MAX_COUNT} \
                     (PGTune's range), or leave it out for the profile's default"
                )));
            }
        }
        let pg_version = raw.pg_version.unwrap_or(*PG_VERSIONS.end());
        if !PG_VERSIONS.contains(&pg_version) {
            return Err(Error::BadInput(format!(
                "--pg-version {pg_version}: supported versions are {} to {}",
                PG_VERSIONS.start(),
                PG_VERSIONS.end()
            )));
        }
        Ok(TuneInput {
            pg_version,
            os: raw.os.unwrap_or(Os::Linux),
            profile: raw.profile.unwrap_or(Profile::Web),
            memory,
            cpus: raw.cpus,
            connections: raw.connections,
            storage: raw.storage.unwrap_or(Storage::Ssd),
            data_size: raw.data_size.unwrap_or(DataSize::UpTo3xRam),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(amount: u64, unit: MemoryUnit) -> Memory {
        Memory { amount, unit }
    }

    #[test]
    fn parse_memory_takes_mb_gb_tb_in_any_case() {
        assert_eq!(parse_memory("64GB").unwrap(), mem(64, MemoryUnit::Gb));
        assert_eq!(parse_memory("512MB").unwrap(), mem(512, MemoryUnit::Mb));
        assert_eq!(parse_memory("1TB").unwrap(), mem(1, MemoryUnit::Tb));
        assert_eq!(parse_memory("16gb").unwrap(), mem(16, MemoryUnit::Gb));
        assert_eq!(parse_memory(" 2 GB ").unwrap(), mem(2, MemoryUnit::Gb));
        assert_eq!(parse_memory("16GB").unwrap().kb(), 16_777_216);
        assert_eq!(parse_memory("1TB").unwrap().kb(), 1_073_741_824);
    }

    #[test]
    fn parse_memory_accepts_decimal_gb_and_tb_as_whole_mb_and_gb() {
        assert_eq!(parse_memory("1.5GB").unwrap(), mem(1536, MemoryUnit::Mb));
        assert_eq!(parse_memory("1.5 gb").unwrap().kb(), 1536 * 1024);
        assert_eq!(parse_memory("0.5TB").unwrap(), mem(512, MemoryUnit::Gb));
        for bad in ["1.5MB", "1.GB", ".5GB", "1.2.3GB", "0.4GB"] {
            let e = parse_memory(bad).unwrap_err();
            assert!(
                e.is_bad_input() && e.to_string().contains("--memory"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn parse_memory_rejects_garbage_negative_zero_and_small() {
        for bad in [
            "64XB",
            "abc",
            "-1GB",
            "0",
            "0GB",
            "64",
            "GB",
            "",
            "100MB",
            "511MB",
            "99999999999999999999GB",
        ] {
            let e = parse_memory(bad).unwrap_err();
            assert!(e.is_bad_input(), "{bad}");
            assert!(e.to_string().contains("--memory"), "{bad}: {e}");
        }
    }

    #[test]
    fn enums_parse_and_name_the_flag_when_unknown() {
        assert_eq!("web".parse::<Profile>().unwrap(), Profile::Web);
        assert_eq!(
            "up-to-3x-ram".parse::<DataSize>().unwrap(),
            DataSize::UpTo3xRam
        );
        let e = "cloud".parse::<Storage>().unwrap_err().to_string();
        assert!(e.contains("--storage") && e.contains("nvme"), "{e}");
        let e = "bsd".parse::<Os>().unwrap_err().to_string();
        assert!(e.contains("--os") && e.contains("windows"), "{e}");
    }

    #[test]
    fn validate_applies_pgtune_defaults_and_ranges() {
        let raw = RawInput {
            memory: Some("16GB".into()),
            ..RawInput::default()
        };
        let i = TuneInput::validate(&raw).unwrap();
        assert_eq!(
            (i.pg_version, i.os, i.profile, i.storage, i.data_size),
            (
                18,
                Os::Linux,
                Profile::Web,
                Storage::Ssd,
                DataSize::UpTo3xRam
            )
        );
        let with = |f: &dyn Fn(&mut RawInput)| {
            let mut r = raw.clone();
            f(&mut r);
            TuneInput::validate(&r).map_err(|e| e.to_string())
        };
        assert!(with(&|r| r.cpus = Some(0)).unwrap_err().contains("--cpus"));
        assert!(with(&|r| r.connections = Some(19))
            .unwrap_err()
            .contains("--max-connections"));
        assert!(with(&|r| r.pg_version = Some(9))
            .unwrap_err()
            .contains("--pg-version"));
        assert!(with(&|r| r.pg_version = Some(19))
            .unwrap_err()
            .contains("--pg-version"));
        assert!(with(&|r| r.memory = None).unwrap_err().contains("--memory"));
        assert!(with(&|r| r.connections = Some(20)).is_ok());
        assert!(with(&|r| r.pg_version = Some(10)).is_ok());
    }
}
