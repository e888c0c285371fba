//! Rendering a tune result: table, json, markdown for reading; a postgresql.conf include file
//! or ALTER SYSTEM statements for applying. Pure: no I/O. [`calculator`] renders PGTune's
//! calculator (no server), [`advice`] the advice for a server ([`crate::tune::TuneAdvice`]),
//! [`dry_run_note`] what `--apply` would do.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::ContentArrangement;
use serde::Serialize;

use super::Format;
use crate::error::{Error, Result};
use crate::report::markdown_cell as cell;
use crate::snapshot::StorageSource;
use crate::tune::advice::{Recommendation, TuneAdvice};
use crate::tune::compare::Comparison;
use crate::tune::evidence::ObjectSetting;
use crate::tune::pgtune::PgTuneOutput;
use crate::tune::TuneInput;

/// Instead of the report: a file to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// A postgresql.conf include file: `name = value  # reason`.
    Conf,
    /// ALTER SYSTEM SET statements.
    Sql,
}

/// PGTune's calculator (no server): its settings for `input`, in `format` or as a file.
pub fn calculator(
    input: &TuneInput,
    out: &PgTuneOutput,
    emit: Option<Emit>,
    format: Format,
) -> String {
    match (emit, format) {
        (Some(Emit::Conf), _) => conf(input, out),
        (Some(Emit::Sql), _) => sql(input, out),
        (None, Format::Table) => table(input, out),
        (None, Format::Json) => json(input, out),
        (None, Format::Markdown) => markdown(input, out),
    }
}

/// The advice for a server with one method's recommendation: the current-against-recommended
/// table (with where the storage input came from), the per-table and per-role settings, and
/// the security review with what it covered; or, with `emit`, a file to apply.
pub fn advice(
    advice: &TuneAdvice,
    rec: &Recommendation,
    storage_source: &StorageSource,
    emit: Option<Emit>,
    format: Format,
) -> Result<String> {
    let input = &advice.input;
    let out = &rec.output;
    let method = rec.method.name();
    let sources = [storage_source.describe(input.storage)];
    Ok(match (emit, format) {
        (Some(Emit::Conf), _) => conf(input, out) + &objects_conf_comments(&rec.objects),
        (Some(Emit::Sql), _) => sql(input, out) + &objects_sql(&rec.objects),
        (None, Format::Json) => {
            let json_err = |e: serde_json::Error| Error::Internal(format!("tune json: {e}"));
            let mut v: serde_json::Value =
                serde_json::from_str(&compare_json(method, input, out, &rec.rows))
                    .map_err(json_err)?;
            v["security"] = serde_json::to_value(&advice.security).map_err(json_err)?;
            v["security_coverage"] =
                serde_json::to_value(&advice.security_coverage).map_err(json_err)?;
            v["storage_source"] = serde_json::to_value(storage_source).map_err(json_err)?;
            if rec.method == crate::tune::Method::Pgopt {
                v["changes"] = serde_json::to_value(&rec.changes).map_err(json_err)?;
                v["objects"] = serde_json::to_value(&rec.objects).map_err(json_err)?;
            }
            if !advice.lacks.is_empty() {
                v["snapshot_lacks"] = serde_json::to_value(&advice.lacks).map_err(json_err)?;
            }
            serde_json::to_string_pretty(&v).expect("json value serialises")
        }
        (None, format) => {
            let markdown = format == Format::Markdown;
            let mut text = if markdown {
                compare_markdown(method, input, out, &rec.rows, &sources)
            } else {
                compare_table(method, input, out, &rec.rows, &sources)
            };
            text.push_str(&objects_table(&rec.objects, markdown));
            text.push_str(if markdown {
                "\n## Security review\n"
            } else {
                "\nSecurity review\n"
            });
            if !advice.security.is_empty() {
                text.push_str(&super::render_findings(&advice.security, format));
            }
            // Nothing is called sound unless it was read.
            text.push('\n');
            text.push_str(&crate::advise::review_coverage_text(
                &advice.security_coverage,
                advice.security.is_empty(),
            ));
            text
        }
    })
}

/// The settings part alone (the demo's settings phase): `--method pgopt`'s table or markdown
/// with the per-table and per-role settings.
pub fn settings(advice: &TuneAdvice, storage_source: &StorageSource, format: Format) -> String {
    let rec = &advice.pgopt;
    let sources = [storage_source.describe(advice.input.storage)];
    let markdown = format == Format::Markdown;
    let mut text = if markdown {
        compare_markdown("pgopt", &advice.input, &rec.output, &rec.rows, &sources)
    } else {
        compare_table("pgopt", &advice.input, &rec.output, &rec.rows, &sources)
    };
    text.push_str(&objects_table(&rec.objects, markdown));
    text
}

/// What `--apply` would do, for a dry run: the statements in order, and which settings would
/// wait for a restart.
pub fn dry_run_note(rec: &Recommendation) -> String {
    let changes = rec.to_change();
    let restart = rec.restart();
    format!(
        "dry run: nothing was changed. --apply would write a journal, then run {} \
         one at a time ({}), pg_reload_conf(), and verify{}; {}",
        crate::advise::count(
            changes.len(),
            "ALTER SYSTEM statement",
            "ALTER SYSTEM statements"
        ),
        changes
            .iter()
            .map(|(n, v)| format!("{n} = {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        if rec.objects.is_empty() {
            String::new()
        } else {
            format!(
                ", then {}",
                crate::advise::count(
                    rec.objects.len(),
                    "ALTER TABLE / ALTER ROLE statement",
                    "ALTER TABLE / ALTER ROLE statements"
                )
            )
        },
        if restart.is_empty() {
            "none waits for a restart".to_string()
        } else {
            format!("{} would wait for a restart", restart.join(", "))
        }
    )
}

/// PGTune's header comments: `# DB Version: 18`, ..., in its order, nulls skipped.
pub fn header(input: &TuneInput, out: &PgTuneOutput) -> Vec<String> {
    let mut h = vec![
        format!("DB Version: {}", input.pg_version),
        format!("OS Type: {}", input.os.name()),
        format!("DB Type: {}", out.db_type.name()),
        format!("Total Memory (RAM): {}", input.memory),
    ];
    if let Some(c) = input.cpus {
        h.push(format!("CPUs num: {c}"));
    }
    if let Some(c) = input.connections {
        h.push(format!("Connections num: {c}"));
    }
    h.push(format!("Data Storage: {}", input.storage.name()));
    h
}

/// The comment block above the settings: warnings, notes, then PGTune's header.
fn comment_block(input: &TuneInput, out: &PgTuneOutput, prefix: &str) -> String {
    let mut s = String::new();
    for w in &out.warnings {
        s.push_str(&format!("{prefix} WARNING: {w}\n"));
    }
    for n in &out.notes {
        s.push_str(&format!("{prefix} NOTE: {n}\n"));
    }
    if !s.is_empty() {
        s.push('\n');
    }
    for line in header(input, out) {
        s.push_str(&format!("{prefix} {line}\n"));
    }
    s.push('\n');
    s
}

/// A postgresql.conf include file: one `name = value` line per setting, its reason as a
/// trailing comment.
pub fn conf(input: &TuneInput, out: &PgTuneOutput) -> String {
    let mut s = comment_block(input, out, "#");
    for x in &out.settings {
        // A list (`a,b`) is not a bare word in postgresql.conf: quote it.
        let value = if x.value.contains(',') {
            format!("'{}'", x.value.replace('\'', "''"))
        } else {
            x.value.clone()
        };
        s.push_str(&format!("{} = {value}  # {}\n", x.name, x.reason));
    }
    s
}

/// `ALTER SYSTEM SET name = 'value';` statements, one per setting.
pub fn sql(input: &TuneInput, out: &PgTuneOutput) -> String {
    let mut s = comment_block(input, out, "--");
    for x in &out.settings {
        // Values are ours (numbers, units, enum words, library lists), quoted as literals.
        s.push_str(&format!(
            "ALTER SYSTEM SET {} = {};\n",
            x.name,
            crate::plan::setting_value_sql(x.name, &x.value)
        ));
    }
    s
}

pub fn table(input: &TuneInput, out: &PgTuneOutput) -> String {
    let mut t = crate::report::term::table();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["setting", "recommended", "reason"]);
    for x in &out.settings {
        t.add_row(vec![x.name, x.value.as_str(), x.reason.as_str()]);
    }
    crate::report::term::keep_words_in(&mut t, |c| c == 0);
    let mut s = format!(
        "pgopt tune --method pgtune: {}\n{t}\n",
        header(input, out).join(", ")
    );
    for w in &out.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for n in &out.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

pub fn markdown(input: &TuneInput, out: &PgTuneOutput) -> String {
    let mut s = String::from("# pgopt tune --method pgtune\n\n");
    for line in header(input, out) {
        s.push_str(&format!("- {}\n", cell(&line)));
    }
    s.push_str("\n| setting | recommended | reason |\n|---|---|---|\n");
    for x in &out.settings {
        s.push_str(&format!(
            "| {} | {} | {} |\n",
            x.name,
            cell(&x.value),
            cell(&x.reason)
        ));
    }
    if !out.warnings.is_empty() {
        s.push_str("\n## Warnings\n\n");
        for w in &out.warnings {
            s.push_str(&format!("- {}\n", cell(w)));
        }
    }
    if !out.notes.is_empty() {
        s.push_str("\n## Notes\n\n");
        for n in &out.notes {
            s.push_str(&format!("- {}\n", cell(n)));
        }
    }
    s
}

#[derive(Serialize)]
struct Json<'a> {
    method: &'static str,
    input: &'a TuneInput,
    #[serde(flatten)]
    output: &'a PgTuneOutput,
}

pub fn json(input: &TuneInput, out: &PgTuneOutput) -> String {
    let mut s = serde_json::to_string_pretty(&Json {
        method: "pgtune",
        input,
        output: out,
    })
    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The current-against-recommended table for a live server.
/// `method` is the name shown (`pgtune`, `pgopt`); `sources` say where detected inputs came
/// from (`storage: ssd (detected: vda, rotational=0)`), one line each under the header.
pub fn compare_table(
    method: &str,
    input: &TuneInput,
    out: &PgTuneOutput,
    rows: &[Comparison],
    sources: &[String],
) -> String {
    let mut t = crate::report::term::table();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "setting",
            "current",
            "recommended",
            "change",
            "needs restart",
            "reason",
        ]);
    for r in rows {
        t.add_row(vec![
            r.name.as_str(),
            &list_breaks(r.current.as_deref().unwrap_or("(unknown to server)")),
            &list_breaks(&r.recommended_display),
            yes_no(r.change),
            yes_no(r.needs_restart),
            r.reason.as_str(),
        ]);
    }
    let mut s = format!(
        "pgopt tune --method {method}: {}\n",
        header(input, out).join(", ")
    );
    for line in sources {
        s.push_str(&format!("{line}\n"));
    }
    // Names and yes/no stay whole; values and reasons wrap (a list wraps after its commas).
    crate::report::term::keep_words_in(&mut t, |c| matches!(c, 0 | 3 | 4));
    s.push_str(&format!("{t}\n"));
    for w in &out.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for n in &out.notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

pub fn compare_markdown(
    method: &str,
    input: &TuneInput,
    out: &PgTuneOutput,
    rows: &[Comparison],
    sources: &[String],
) -> String {
    let mut s = format!("# pgopt tune --method {method}\n\n");
    for line in header(input, out).iter().chain(sources) {
        s.push_str(&format!("- {}\n", cell(line)));
    }
    s.push_str(
        "\n| setting | current | recommended | change | needs restart | reason |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.name,
            cell(r.current.as_deref().unwrap_or("(unknown to server)")),
            cell(&r.recommended_display),
            yes_no(r.change),
            yes_no(r.needs_restart),
            cell(&r.reason)
        ));
    }
    for (title, list) in [("Warnings", &out.warnings), ("Notes", &out.notes)] {
        if !list.is_empty() {
            s.push_str(&format!("\n## {title}\n\n"));
            for w in list {
                s.push_str(&format!("- {}\n", cell(w)));
            }
        }
    }
    s
}

#[derive(Serialize)]
struct CompareJson<'a> {
    method: &'a str,
    input: &'a TuneInput,
    comparison: &'a [Comparison],
    #[serde(flatten)]
    output: &'a PgTuneOutput,
}

pub fn compare_json(
    method: &str,
    input: &TuneInput,
    out: &PgTuneOutput,
    rows: &[Comparison],
) -> String {
    let mut s = serde_json::to_string_pretty(&CompareJson {
        method,
        input,
        comparison: rows,
        output: out,
    })
    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// A list value (`a,b`) shown with a space after each comma, so that a narrow cell wraps
/// between its elements instead of inside one; other values as they are.
fn list_breaks(value: &str) -> String {
    value.replace(',', ", ").replace(",  ", ", ")
}

/// The per-object settings as a table (or a markdown table), with their reasons.
fn objects_table(objects: &[ObjectSetting], markdown: bool) -> String {
    if objects.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    if markdown {
        out.push_str("\n## Per-table and per-role settings\n\n");
        out.push_str("| object | setting | current | recommended | reason |\n");
        out.push_str("|---|---|---|---|---|\n");
        for o in objects {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                cell(&o.label()),
                o.name,
                cell(o.current.as_deref().unwrap_or("(server's)")),
                cell(&o.value),
                cell(&o.reason)
            ));
        }
        return out;
    }
    let mut t = crate::report::term::table();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "object",
        "setting",
        "current",
        "recommended",
        "reason",
    ]);
    for o in objects {
        t.add_row(vec![
            o.label(),
            o.name.to_string(),
            o.current.clone().unwrap_or_else(|| "(server's)".into()),
            o.value.clone(),
            o.reason.clone(),
        ]);
    }
    out.push_str("\nPer-table and per-role settings\n");
    crate::report::term::keep_words(&mut t);
    out.push_str(&t.to_string());
    out.push('\n');
    out
}

/// The statements that set them, one per line, for `--emit sql`.
fn objects_sql(objects: &[ObjectSetting]) -> String {
    objects
        .iter()
        .map(|o| format!("-- {}\n{};\n", o.reason.replace('\n', " "), o.set_sql()))
        .collect()
}

/// For `--emit conf`: they are not postgresql.conf settings, so they come as comments.
fn objects_conf_comments(objects: &[ObjectSetting]) -> String {
    if objects.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n# Per-table and per-role settings (not postgresql.conf settings; run these in SQL):\n",
    );
    for o in objects {
        out.push_str(&format!("# {};\n", o.set_sql()));
    }
    out
}
