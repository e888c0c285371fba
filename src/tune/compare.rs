//! Current against recommended: a server's pg_settings rows next to a recommendation, values
//! normalized so that `4GB` and `524288` (8kB pages) compare, and each recommended value
//! checked against what the server accepts (type, unit, min, max, enum values). Pure: no I/O.

use serde::{Deserialize, Serialize};

use super::pgtune::{format_kb, Setting};

/// One pg_settings row, as much of it as comparing and validating needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSetting {
    pub name: String,
    pub setting: String,
    pub unit: Option<String>,
    pub vartype: String,
    pub context: String,
    pub source: String,
    /// Visible to superusers and pg_read_all_settings only.
    pub sourcefile: Option<String>,
    pub min_val: Option<String>,
    pub max_val: Option<String>,
    pub enumvals: Option<Vec<String>>,
    pub pending_restart: bool,
}

impl ServerSetting {
    /// Changing it takes a server restart.
    pub fn needs_restart(&self) -> bool {
        self.context == "postmaster"
    }

    /// kB per unit of this setting, when it is a memory setting (`8kB` pages -> 8).
    pub fn unit_kb(&self) -> Option<f64> {
        self.unit.as_deref().and_then(unit_kb)
    }

    /// The current value in the style of the recommendation: memory as `4GB`/`128MB`/`kB`.
    pub fn display_value(&self) -> String {
        normalize_server_value(&self.setting, self.unit_kb())
    }
}

/// kB per memory unit of pg_settings (`B`, `kB`, `8kB`, `MB`, `16MB`, ...); None for other units.
pub fn unit_kb(unit: &str) -> Option<f64> {
    let split = unit
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unit.len());
    let (digits, base) = unit.split_at(split);
    let factor: f64 = if digits.is_empty() {
        1.0
    } else {
        digits.parse().ok()?
    };
    let base_kb = match base {
        "B" => 1.0 / 1024.0,
        "kB" => 1.0,
        "MB" => 1024.0,
        "GB" => 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(factor * base_kb)
}

/// A server value (in the setting's unit) as the calculator prints it.
fn normalize_server_value(setting: &str, unit_kb: Option<f64>) -> String {
    match (unit_kb, setting.parse::<i64>()) {
        (Some(k), Ok(n)) if n >= 0 => {
            let kb = n as f64 * k;
            if kb.fract() == 0.0 {
                format_kb(kb as u64)
            } else {
                format!("{}B", (kb * 1024.0).round() as u64)
            }
        }
        _ => setting.to_string(),
    }
}

/// A value as written in a conf file (`4GB`, `512kB`, `1000`, `on`) in kB, for memory settings
/// (a bare number is in the setting's unit).
pub fn value_kb(value: &str, unit_kb_of_setting: f64) -> Option<f64> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim();
    if unit.is_empty() {
        return Some(n * unit_kb_of_setting);
    }
    Some(n * unit_kb(unit)?)
}

fn bool_value(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Some(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Whether `value` (as written in a conf file) means the same as the server's current setting.
pub fn same_value(s: &ServerSetting, value: &str) -> bool {
    match s.vartype.as_str() {
        "bool" => bool_value(&s.setting).is_some() && bool_value(&s.setting) == bool_value(value),
        "integer" | "real" => {
            let k = s.unit_kb();
            let current = s.setting.parse::<f64>().ok().map(|n| n * k.unwrap_or(1.0));
            let wanted = match k {
                Some(k) => value_kb(value, k),
                None => value.trim().parse::<f64>().ok(),
            };
            match (current, wanted) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                _ => false,
            }
        }
        "enum" => s.setting.eq_ignore_ascii_case(value.trim()),
        _ => s.setting == value,
    }
}

/// Checks `value` against the server's type, range and enum values; the error says why.
pub fn validate_value(s: &ServerSetting, value: &str) -> Result<(), String> {
    let name = &s.name;
    match s.vartype.as_str() {
        "bool" => bool_value(value)
            .map(|_| ())
            .ok_or_else(|| format!("{name} = {value:?}: not a boolean (on/off)")),
        "integer" | "real" => {
            let k = s.unit_kb();
            let in_units = match k {
                Some(k) => value_kb(value, k).map(|kb| kb / k),
                None => value.trim().parse::<f64>().ok(),
            }
            .ok_or_else(|| {
                format!(
                    "{name} = {value:?}: not a {} value{}",
                    s.vartype,
                    s.unit
                        .as_deref()
                        .map(|u| format!(" (unit {u})"))
                        .unwrap_or_default()
                )
            })?;
            if s.vartype == "integer" && in_units.fract() != 0.0 && k.is_none() {
                return Err(format!("{name} = {value:?}: not a whole number"));
            }
            let bound = |b: &Option<String>| b.as_deref().and_then(|b| b.parse::<f64>().ok());
            if let (Some(min), Some(max)) = (bound(&s.min_val), bound(&s.max_val)) {
                if in_units < min || in_units > max {
                    let unit = s
                        .unit
                        .as_deref()
                        .map(|u| format!(" {u}"))
                        .unwrap_or_default();
                    return Err(format!(
                        "{name} = {value:?}: outside the server's range {min}..{max}{unit}"
                    ));
                }
            }
            Ok(())
        }
        "enum" => match &s.enumvals {
            Some(vals) if !vals.iter().any(|v| v.eq_ignore_ascii_case(value.trim())) => Err(
                format!("{name} = {value:?}: not one of {}", vals.join(", ")),
            ),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A memory amount for people: whole units when exact (`128MB`, `4GB`), else one decimal in
/// the largest unit it reaches (`5.9GB`); the same units for current and recommended values.
pub fn human_kb(kb: f64) -> String {
    const MB: f64 = 1024.0;
    const GB: f64 = 1024.0 * 1024.0;
    const TB: f64 = 1024.0 * GB;
    let (n, unit) = if kb >= TB {
        (kb / TB, "TB")
    } else if kb >= GB {
        (kb / GB, "GB")
    } else if kb >= MB {
        (kb / MB, "MB")
    } else {
        return format!("{}kB", kb.round() as u64);
    };
    if n.fract() == 0.0 {
        format!("{}{unit}", n as u64)
    } else {
        format!("{n:.1}{unit}")
    }
}

/// One line of the current-against-recommended table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub name: String,
    /// None when the server does not know the setting.
    pub current: Option<String>,
    /// Exactly as it will be written (ALTER SYSTEM, conf).
    pub recommended: String,
    /// For people, in the same human units as `current` (`5.9GB`, not `6170880kB`).
    pub recommended_display: String,
    pub change: bool,
    pub needs_restart: bool,
    pub reason: String,
}

/// Puts each recommended setting next to the server's current value.
pub fn compare(server: &[ServerSetting], recommended: &[Setting]) -> Vec<Comparison> {
    recommended
        .iter()
        .map(|r| {
            let s = server.iter().find(|s| s.name == r.name);
            // Memory settings in human units on both sides; the rest as they are, and so are
            // negative values (-1 means "off" for log_temp_files and the like, not 0 kB).
            let human = |s: &ServerSetting, value: &str| {
                s.unit_kb()
                    .and_then(|k| value_kb(value, k))
                    .filter(|kb| *kb >= 0.0)
                    .map(human_kb)
                    .unwrap_or_else(|| value.to_string())
            };
            Comparison {
                name: r.name.to_string(),
                current: s.map(|s| human(s, &s.display_value())),
                recommended: r.value.clone(),
                recommended_display: s.map_or_else(|| r.value.clone(), |s| human(s, &r.value)),
                change: s.is_some_and(|s| !same_value(s, &r.value)),
                needs_restart: s.is_some_and(|s| s.needs_restart()),
                reason: r.reason.clone(),
            }
        })
        .collect()
}

/// Refuses values the server would not take (type, range, enum values) or that do not fit
/// the host (shared_buffers above the effective memory), before anything changes.
pub fn validate_changes(
    server: &[ServerSetting],
    changes: &[(&str, &str)],
    memory_bytes: Option<u64>,
) -> crate::error::Result<()> {
    let mut problems = Vec::new();
    for (name, value) in changes {
        let Some(s) = server.iter().find(|s| s.name == *name) else {
            problems.push(format!("{name}: unknown to this server"));
            continue;
        };
        if let Err(e) = validate_value(s, value) {
            problems.push(e);
        }
        if *name == "shared_buffers" {
            let kb = s.unit_kb().and_then(|k| value_kb(value, k));
            if let (Some(kb), Some(mem)) = (kb, memory_bytes) {
                if kb * 1024.0 > mem as f64 {
                    problems.push(format!(
                        "shared_buffers = {value} does not fit in the server's memory \
                         ({} MB); give the real --memory",
                        mem / (1024 * 1024)
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(crate::error::Error::BadInput(format!(
            "refusing to apply, nothing was changed: {}",
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(name: &str, setting: &str, unit: &str, ctx: &str) -> ServerSetting {
        ServerSetting {
            name: name.into(),
            setting: setting.into(),
            unit: Some(unit.into()),
            vartype: "integer".into(),
            context: ctx.into(),
            source: "default".into(),
            sourcefile: None,
            min_val: Some("16".into()),
            max_val: Some("1073741823".into()),
            enumvals: None,
            pending_restart: false,
        }
    }

    #[test]
    fn memory_values_normalize_across_units() {
        let sb = mem("shared_buffers", "16384", "8kB", "postmaster");
        assert_eq!(sb.display_value(), "128MB");
        assert!(same_value(&sb, "128MB"));
        assert!(same_value(&sb, "131072kB"));
        assert!(!same_value(&sb, "4GB"));
        let wm = mem("work_mem", "4096", "kB", "user");
        assert_eq!(wm.display_value(), "4MB");
        assert!(same_value(&wm, "4096"));
        let mw = mem("min_wal_size", "80", "MB", "sighup");
        assert_eq!(mw.display_value(), "80MB");
        assert!(same_value(&mw, "80MB"));
    }

    #[test]
    fn comparison_shows_current_and_recommended_in_the_same_human_units() {
        let sb = mem("shared_buffers", "16384", "8kB", "postmaster");
        let rec = Setting {
            name: "shared_buffers",
            value: "6170880kB".into(),
            reason: String::new(),
        };
        let rows = compare(&[sb], &[rec]);
        assert_eq!(rows[0].current.as_deref(), Some("128MB"));
        assert_eq!(rows[0].recommended_display, "5.9GB");
        // What is written keeps the exact value.
        assert_eq!(rows[0].recommended, "6170880kB");
        assert_eq!(human_kb(512.0), "512kB");
        assert_eq!(human_kb(4.0 * 1024.0 * 1024.0), "4GB");
    }

    #[test]
    fn a_negative_memory_value_is_shown_as_it_is_not_as_zero() {
        // log_temp_files = -1 is "off"; 0 logs every temp file: the two must not read alike.
        let ltf = mem("log_temp_files", "-1", "kB", "superuser");
        let rec = Setting {
            name: "log_temp_files",
            value: "0".into(),
            reason: String::new(),
        };
        let rows = compare(&[ltf], &[rec]);
        assert_eq!(rows[0].current.as_deref(), Some("-1"));
        assert_eq!(rows[0].recommended_display, "0kB");
        assert!(rows[0].change);
    }

    #[test]
    fn validation_uses_range_enum_and_bool() {
        let sb = mem("shared_buffers", "16384", "8kB", "postmaster");
        assert!(validate_value(&sb, "4GB").is_ok());
        assert!(validate_value(&sb, "64kB").unwrap_err().contains("range"));
        assert!(validate_value(&sb, "lots").is_err());
        let e = ServerSetting {
            vartype: "enum".into(),
            unit: None,
            enumvals: Some(vec!["off".into(), "on".into(), "try".into()]),
            ..mem("huge_pages", "try", "", "postmaster")
        };
        assert!(validate_value(&e, "off").is_ok());
        assert!(validate_value(&e, "maybe").unwrap_err().contains("try"));
        let b = ServerSetting {
            vartype: "bool".into(),
            unit: None,
            ..mem("jit", "on", "", "user")
        };
        assert!(validate_value(&b, "off").is_ok() && !same_value(&b, "off"));
        assert!(validate_value(&b, "sometimes").is_err());
    }

    mod props {
        use proptest::prelude::*;

        use super::super::{human_kb, unit_kb, value_kb};
        use crate::tune::pgtune::format_kb;
        use crate::tune::{parse_memory, Memory, MemoryUnit};

        /// pg_settings memory units and their size in kB.
        const UNITS: [(&str, f64); 6] = [
            ("B", 1.0 / 1024.0),
            ("kB", 1.0),
            ("8kB", 8.0),
            ("MB", 1024.0),
            ("16MB", 16384.0),
            ("GB", 1048576.0),
        ];

        proptest! {
            #[test]
            fn a_size_rendered_in_the_largest_exact_unit_parses_back(kb in 0u64..(1 << 40)) {
                let text = format_kb(kb);
                // Whatever the setting's own unit, a value with a unit is read in that unit.
                for (_, k) in UNITS {
                    prop_assert_eq!(value_kb(&text, k), Some(kb as f64), "{}", text);
                }
            }

            #[test]
            fn rendering_and_parsing_sizes_keeps_their_order(a in 0u64..(1 << 40), b in 0u64..(1 << 40)) {
                let pa = value_kb(&format_kb(a), 8.0).unwrap();
                let pb = value_kb(&format_kb(b), 8.0).unwrap();
                prop_assert_eq!(a.cmp(&b), pa.partial_cmp(&pb).unwrap());
            }

            #[test]
            fn a_bare_number_is_in_the_settings_own_unit(n in 0u32..1_000_000, u in 0usize..6) {
                let (unit, k) = UNITS[u];
                prop_assert_eq!(unit_kb(unit), Some(k));
                prop_assert_eq!(value_kb(&n.to_string(), k), Some(f64::from(n) * k));
                // A value with a unit is in that unit (pg_settings' `8kB`, `16MB` are no
                // units a value is written in: `08kB` is 8 kB).
                if !unit.starts_with(|c: char| c.is_ascii_digit()) {
                    prop_assert_eq!(value_kb(&format!("{n}{unit}"), 8.0), Some(f64::from(n) * k));
                }
            }

            #[test]
            fn human_sizes_never_go_down_as_the_size_goes_up(a in 0u64..(1 << 40), b in 0u64..(1 << 40)) {
                let (lo, hi) = (a.min(b), a.max(b));
                let back = |kb: u64| value_kb(&human_kb(kb as f64), 1.0).unwrap();
                prop_assert!(back(lo) <= back(hi), "{} > {}", human_kb(lo as f64), human_kb(hi as f64));
            }

            #[test]
            fn a_memory_option_renders_and_parses_to_itself(amount in 1u64..100_000, u in 0usize..3) {
                let unit = [MemoryUnit::Mb, MemoryUnit::Gb, MemoryUnit::Tb][u];
                let memory = Memory { amount, unit };
                prop_assume!(memory.bytes() >= 512 << 20);
                prop_assert_eq!(parse_memory(&memory.to_string()).unwrap(), memory);
            }
        }
    }
}
