//! `--method pgtune`: exactly what PGTune's calculator (le0pard/pgtune, current version)
//! recommends for the same inputs — the same settings, in its order, in its units.
//!
//! The rules are restated in shared/reference/pgtune-rules.md: all memory maths in kB with a
//! floor at each step, values printed with PGTune's `formatValue` (GB when divisible by
//! 1048576 kB, MB when by 1024, else kB). This file must not "improve" anything; pgopt's own
//! method starts from this output and changes it with evidence.

use serde::Serialize;

use super::{DataSize, Os, Profile, Storage, TuneInput};

/// PGTune's calculator takes the same inputs as every method.
pub type PgTuneInput = TuneInput;

const MB_KB: u64 = 1024;
const GB_KB: u64 = 1024 * 1024;

/// PGTune's database types (it has no `governance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DbType {
    Web,
    Oltp,
    Dw,
    Desktop,
    Mixed,
}

impl DbType {
    pub fn name(self) -> &'static str {
        match self {
            DbType::Web => "web",
            DbType::Oltp => "oltp",
            DbType::Dw => "dw",
            DbType::Desktop => "desktop",
            DbType::Mixed => "mixed",
        }
    }
}

/// One printed setting: its name, the value as PGTune prints it, and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PgTuneOutput {
    /// The database type PGTune computed for (governance becomes oltp).
    pub db_type: DbType,
    /// In PGTune's printed order; settings it leaves out are absent.
    pub settings: Vec<Setting>,
    /// PGTune's `# WARNING` messages, in its order.
    pub warnings: Vec<String>,
    /// What pgopt did to the input to fit PGTune (the governance mapping).
    pub notes: Vec<String>,
}

impl PgTuneOutput {
    /// The value of one setting, when it is recommended.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_str())
    }

    /// (name, value) pairs, in order.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.settings
            .iter()
            .map(|s| (s.name, s.value.as_str()))
            .collect()
    }
}

/// PGTune's `formatValue` for a size in kB.
pub fn format_kb(v: u64) -> String {
    if v.is_multiple_of(GB_KB) {
        format!("{}GB", v / GB_KB)
    } else if v.is_multiple_of(MB_KB) {
        format!("{}MB", v / MB_KB)
    } else {
        format!("{v}kB")
    }
}

/// Computes PGTune's recommendation. Pure; the input is already validated.
pub fn pgtune(input: &PgTuneInput) -> PgTuneOutput {
    let mut notes = Vec::new();
    let db = match input.profile {
        Profile::Web => DbType::Web,
        Profile::Oltp => DbType::Oltp,
        Profile::Dw => DbType::Dw,
        Profile::Desktop => DbType::Desktop,
        Profile::Mixed => DbType::Mixed,
        Profile::Governance => {
            notes.push(
                "PGTune has no governance type: computed as oltp (the governance workload is \
                 OLTP-like); --method pgopt adds governance's own settings"
                    .to_string(),
            );
            DbType::Oltp
        }
    };
    let t = db.name();
    let v = input.pg_version;
    let os = input.os;
    let win_le17 = os == Os::Windows && v <= 17;
    let ram = input.memory.kb();
    let mut out: Vec<Setting> = Vec::new();
    let mut push = |name: &'static str, value: String, reason: String| {
        out.push(Setting {
            name,
            value,
            reason,
        })
    };

    // max_connections
    let (conns, why) = match input.connections {
        Some(c) => (c, "given (--max-connections)".to_string()),
        None => {
            let c = match db {
                DbType::Web => 200,
                DbType::Oltp => 300,
                DbType::Dw => 40,
                DbType::Desktop => 20,
                DbType::Mixed => 100,
            };
            (c, format!("PGTune default for {t}"))
        }
    };
    push("max_connections", conns.to_string(), why);

    // shared_buffers (the Windows 512MB cap applies only to PG < 10, outside the range).
    let (sb, why) = match db {
        DbType::Desktop => (ram / 16, "RAM/16 (desktop)".to_string()),
        _ => (ram / 4, format!("RAM/4 ({t})")),
    };
    push("shared_buffers", format_kb(sb), why);

    // effective_cache_size
    let (ecs, why) = match db {
        DbType::Desktop => (ram / 4, "RAM/4 (desktop)".to_string()),
        _ => (ram * 3 / 4, format!("RAM*3/4 ({t})")),
    };
    push("effective_cache_size", format_kb(ecs), why);

    // maintenance_work_mem
    let (mut mwm, mut why) = match db {
        DbType::Dw => (ram / 8, "RAM/8 (dw)".to_string()),
        _ => (ram / 16, format!("RAM/16 ({t})")),
    };
    let cap = if win_le17 { 2 * GB_KB } else { 8 * GB_KB };
    if mwm >= cap {
        if win_le17 {
            mwm = cap - MB_KB;
            why.push_str(", capped at 2047MB (Windows, PG <= 17 rejects 2GB)");
        } else {
            mwm = cap;
            why.push_str(", capped at 8GB");
        }
    }
    push("maintenance_work_mem", format_kb(mwm), why);

    push(
        "checkpoint_completion_target",
        "0.9".into(),
        "PGTune constant (PostgreSQL's default since 14)".into(),
    );

    // wal_buffers: 3% of shared_buffers, at most 16MB, rounded up to 16MB above 14MB, at
    // least 32kB.
    let mut wal = 3 * sb / 100;
    let mut why = "3% of shared_buffers".to_string();
    if wal > 16 * MB_KB {
        wal = 16 * MB_KB;
        why.push_str(", capped at 16MB");
    }
    if wal > 14 * MB_KB && wal < 16 * MB_KB {
        wal = 16 * MB_KB;
        why.push_str(", rounded up to 16MB (above 14MB)");
    }
    if wal < 32 {
        wal = 32;
        why.push_str(", raised to the 32kB minimum");
    }
    push("wal_buffers", format_kb(wal), why);

    let (dst, why) = match db {
        DbType::Dw => ("500", "500 (dw)".to_string()),
        _ => ("100", format!("100 ({t})")),
    };
    push("default_statistics_target", dst.into(), why);

    let (rpc, why) = if input.data_size == DataSize::LessThanRam {
        ("1.1", "data smaller than RAM: pages are cached".to_string())
    } else if input.storage == Storage::Hdd {
        ("4", "hdd: random reads are expensive".to_string())
    } else if db == DbType::Dw {
        (
            "4",
            format!("dw on {}: left at the default", input.storage.name()),
        )
    } else {
        (
            "1.1",
            format!("{}: random reads are cheap", input.storage.name()),
        )
    };
    push("random_page_cost", rpc.into(), why);

    if os == Os::Linux {
        let n = match input.storage {
            Storage::Hdd => 2,
            Storage::Ssd => 200,
            Storage::San => 300,
            Storage::Nvme => 1000,
        };
        push(
            "effective_io_concurrency",
            n.to_string(),
            format!("{} on Linux", input.storage.name()),
        );
    }

    // Parallel settings, needed by work_mem (the worker count).
    let cpus = input.cpus.filter(|&c| c >= 4);

    // work_mem
    let workers = cpus.unwrap_or(8);
    let x = (ram - sb) as f64 / ((conns as f64 + workers as f64) * 3.0);
    let (mut wm, mut why) = match db {
        DbType::Web | DbType::Oltp => (x.floor(), String::new()),
        DbType::Dw | DbType::Mixed => ((x / 2.0).floor(), "/2".to_string()),
        DbType::Desktop => ((x / 6.0).floor(), "/6".to_string()),
    };
    why = format!(
        "(RAM - shared_buffers) / ((max_connections + {workers} {}) * 3){why} ({t})",
        if cpus.is_some() {
            "workers"
        } else {
            "default workers"
        }
    );
    match input.data_size {
        DataSize::LessThanRam => {
            wm = (wm * 1.3).floor();
            why.push_str(", *1.3 (data smaller than RAM)");
        }
        DataSize::MoreThan3xRam => {
            wm = (wm * 0.9).floor();
            why.push_str(", *0.9 (data more than 3x RAM)");
        }
        DataSize::UpTo3xRam => {}
    }
    let mut wm = wm as u64;
    if wm < 4 * MB_KB {
        wm = 4 * MB_KB;
        why.push_str(", raised to the 4MB minimum");
    }
    if win_le17 && wm > 2 * GB_KB - MB_KB {
        wm = 2 * GB_KB - MB_KB;
        why.push_str(", capped at 2047MB (Windows, PG <= 17)");
    }
    push("work_mem", format_kb(wm), why);

    let (hp, why) = if os == Os::Mac {
        ("off", "macOS has no huge pages for PostgreSQL")
    } else if sb >= 2 * GB_KB {
        ("try", "shared_buffers >= 2GB")
    } else {
        ("off", "shared_buffers < 2GB")
    };
    push("huge_pages", hp.into(), why.into());

    if v >= 12 && matches!(db, DbType::Web | DbType::Oltp | DbType::Mixed) {
        push(
            "jit",
            "off".into(),
            format!("JIT costs more than it saves on short queries ({t}, PG >= 12)"),
        );
    }

    if v >= 15 {
        push("wal_compression", "lz4".into(), "lz4 on PG >= 15".into());
    } else {
        push("wal_compression", "on".into(), "pglz on PG < 15".into());
    }

    match input.cpus {
        Some(c) if c >= 32 => push("autovacuum_max_workers", "5".into(), ">= 32 CPUs".into()),
        Some(c) if c >= 16 => push("autovacuum_max_workers", "4".into(), ">= 16 CPUs".into()),
        _ => {}
    }

    if mwm >= 2 * GB_KB {
        push(
            "autovacuum_work_mem",
            "2GB".into(),
            "maintenance_work_mem >= 2GB: at most 2GB per autovacuum worker".into(),
        );
    }

    if v >= 18 {
        let uring = os == Os::Linux;
        push(
            "io_method",
            if uring { "io_uring" } else { "worker" }.into(),
            if uring {
                "PG 18 on Linux".to_string()
            } else {
                format!("PG 18 on {} (no io_uring)", os.name())
            },
        );
        if let (false, Some(c)) = (uring, input.cpus) {
            let n = (c / 4).clamp(3, 32);
            if n > 3 {
                push(
                    "io_workers",
                    n.to_string(),
                    "CPUs/4, between 3 and 32".into(),
                );
            }
        }
    }

    let (min_wal, max_wal) = match db {
        DbType::Web | DbType::Mixed => (GB_KB, 4 * GB_KB),
        DbType::Oltp => (2 * GB_KB, 8 * GB_KB),
        DbType::Dw => (4 * GB_KB, 16 * GB_KB),
        DbType::Desktop => (100 * MB_KB, 2 * GB_KB),
    };
    push(
        "min_wal_size",
        format_kb(min_wal),
        format!("PGTune constant for {t}"),
    );
    push(
        "max_wal_size",
        format_kb(max_wal),
        format!("PGTune constant for {t}"),
    );

    if let Some(c) = cpus {
        push("max_worker_processes", c.to_string(), "= CPUs".into());
        let half = c.div_ceil(2);
        let (gather, why) = if db == DbType::Dw {
            (half, "ceil(CPUs/2) (dw: no cap)".to_string())
        } else {
            (half.min(4), format!("ceil(CPUs/2), at most 4 ({t})"))
        };
        push("max_parallel_workers_per_gather", gather.to_string(), why);
        push("max_parallel_workers", c.to_string(), "= CPUs".into());
        if v >= 11 {
            push(
                "max_parallel_maintenance_workers",
                half.min(4).to_string(),
                "ceil(CPUs/2), at most 4".into(),
            );
        }
    }

    if db == DbType::Desktop {
        push(
            "wal_level",
            "minimal".into(),
            "desktop: no replication or archiving".into(),
        );
        push(
            "max_wal_senders",
            "0".into(),
            "required by wal_level = minimal".into(),
        );
    }

    cap_to_server_limits(&mut out, &mut notes);
    PgTuneOutput {
        db_type: db,
        settings: out,
        warnings: warnings(input, db),
        notes,
    }
}

/// The largest value (kB) PostgreSQL accepts for its memory settings: integer settings top out
/// at INT_MAX of their unit, shared_buffers at INT_MAX / 2 pages of 8kB.
/// <https://www.postgresql.org/docs/current/runtime-config-resource.html>
pub const SERVER_MAX_KB: &[(&str, u64)] = &[
    ("shared_buffers", 1_073_741_823 * 8),
    ("effective_cache_size", 2_147_483_647 * 8),
    ("work_mem", 2_147_483_647),
    ("maintenance_work_mem", 2_147_483_647),
    ("wal_buffers", 262_143 * 8),
];

/// Caps memory values above what the server accepts to the setting's maximum (rounded down to
/// a whole MB), with a note: a value the server refuses would fail the whole apply.
fn cap_to_server_limits(out: &mut [Setting], notes: &mut Vec<String>) {
    for s in out.iter_mut() {
        let Some(&(_, max_kb)) = SERVER_MAX_KB.iter().find(|(n, _)| *n == s.name) else {
            continue;
        };
        let Some(kb) = super::compare::value_kb(&s.value, 1.0) else {
            continue;
        };
        if kb > max_kb as f64 {
            let capped = format_kb(max_kb / 1024 * 1024);
            notes.push(format!(
                "{} = {} is above the largest value PostgreSQL accepts ({max_kb} kB): capped at {capped}",
                s.name, s.value
            ));
            s.reason = format!("{} (capped at the server's maximum)", s.reason);
            s.value = capped;
        }
    }
}

/// PGTune's warnings, in its order.
fn warnings(input: &PgTuneInput, db: DbType) -> Vec<String> {
    let mut w = Vec::new();
    let bytes = input.memory.bytes();
    if bytes < 256 * 1024 * 1024 {
        w.push("this tool not being optimal for low memory systems".to_string());
    } else if bytes > 100 * 1024 * 1024 * 1024 {
        w.push("this tool not being optimal for very high memory systems".to_string());
    }
    if input.pg_version >= 15 {
        w.push(
            "wal_compression = lz4 needs a server built with lz4 (--with-lz4), as standard \
             packages are; otherwise use wal_compression = pglz"
                .to_string(),
        );
    }
    if input.pg_version >= 18 && input.os == Os::Linux {
        w.push(
            "io_method = io_uring needs a server built with liburing (--with-liburing); \
             otherwise use io_method = worker"
                .to_string(),
        );
    }
    if db == DbType::Dw && input.storage != Storage::Hdd && input.data_size != DataSize::LessThanRam
    {
        let on = match input.storage {
            Storage::Ssd => "SSDs",
            Storage::Nvme => "NVMe drives",
            _ => "SAN storage",
        };
        w.push(format!(
            "Cost parameters for Data Warehouses on {on} are left at defaults \
             (random_page_cost = 4): large scans favour sequential reads"
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_kb_picks_the_largest_exact_unit() {
        assert_eq!(format_kb(4_194_304), "4GB");
        assert_eq!(format_kb(1_572_864), "1536MB");
        assert_eq!(format_kb(20_164), "20164kB");
        assert_eq!(format_kb(32), "32kB");
        assert_eq!(format_kb(2_096_128), "2047MB");
    }
}
