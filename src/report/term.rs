//! The one terminal policy for everything pgopt prints for people: how wide, whether in
//! colour, and the one constructor of comfy-table tables.
//!
//! - Width: the terminal's when standard output is one; otherwise `COLUMNS` when set, else
//!   [`PIPE_WIDTH`]: a file or a pipe gets lines a person can still read, never 380 columns
//!   nor one character per column.
//! - Colour: only when standard output is a terminal and `NO_COLOR` is not set (any
//!   non-empty value, <https://no-color.org>); never in files or pipes.
//!
//! This module asks the terminal once per call and does nothing else: the renderers take
//! the answers as plain values ([`TextOptions`]) and stay pure.

use std::io::IsTerminal;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

/// Width of text written to a file or a pipe when `COLUMNS` does not say otherwise.
pub const PIPE_WIDTH: usize = 100;
/// Narrower than this, tables and lines stop shrinking (they would only get harder to read).
pub const MIN_WIDTH: usize = 60;

/// How text output is laid out, decided once by the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextOptions {
    /// Columns a line may take.
    pub width: usize,
    /// ANSI colour for severities.
    pub color: bool,
    /// Each finding's evidence, full next step and SQL, instead of one line per finding.
    pub verbose: bool,
}

impl TextOptions {
    /// The policy for standard output, not verbose.
    pub fn detect() -> Self {
        TextOptions {
            width: width(),
            color: color(),
            verbose: false,
        }
    }

    /// A fixed layout (tests, files): no colour.
    pub fn fixed(width: usize, verbose: bool) -> Self {
        TextOptions {
            width: width.max(MIN_WIDTH),
            color: false,
            verbose,
        }
    }
}

/// Columns for standard output (see the module's policy).
pub fn width() -> usize {
    let w = if std::io::stdout().is_terminal() {
        terminal_columns().or_else(columns_env)
    } else {
        columns_env()
    };
    w.unwrap_or(PIPE_WIDTH).max(MIN_WIDTH)
}

/// True when standard output is a terminal and NO_COLOR is unset or empty.
pub fn color() -> bool {
    std::io::stdout().is_terminal() && !no_color()
}

/// As [`color`], for standard error (logs).
pub fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && !no_color()
}

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

fn columns_env() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
}

fn terminal_columns() -> Option<usize> {
    // A scratch table asks the terminal the same way comfy-table does when it wraps.
    Table::new().width().map(usize::from).filter(|w| *w > 0)
}

/// A table with the house preset, wrapped to [`width`]. Every table pgopt prints is made here.
pub fn table() -> Table {
    table_of_width(width())
}

/// As [`table`], for a given width.
pub fn table_of_width(width: usize) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(u16::try_from(width.max(MIN_WIDTH)).unwrap_or(u16::MAX));
    t
}

/// Keeps every word of `t` whole: each column is made at least as wide as its longest word
/// (header included), so wrapping happens between words; a table that cannot fit that way
/// grows wider than the width instead of splitting names and numbers. Call after the rows.
pub fn keep_words(t: &mut Table) {
    keep_words_in(t, |_| true);
}

/// As [`keep_words`], for the columns `keep` says yes to (by index); the others wrap freely,
/// so that one long value (a library list, a reason) does not widen the whole table.
pub fn keep_words_in(t: &mut Table, keep: impl Fn(usize) -> bool) {
    let mut longest: Vec<usize> = Vec::new();
    let rows = t.header().into_iter().chain(t.row_iter());
    for row in rows {
        for (i, cell) in row.cell_iter().enumerate() {
            let w = cell
                .content()
                .split_whitespace()
                .map(|w| w.chars().count())
                .max()
                .unwrap_or(0);
            if longest.len() <= i {
                longest.resize(i + 1, 0);
            }
            longest[i] = longest[i].max(w);
        }
    }
    for (i, (column, w)) in t.column_iter_mut().zip(longest).enumerate() {
        if !keep(i) {
            continue;
        }
        // The boundary counts the cell padding (one space each side) too.
        let w = u16::try_from(w + 2).unwrap_or(u16::MAX);
        column.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
            comfy_table::Width::Fixed(w),
        ));
    }
}

/// `text` in bold `colour` (an ANSI SGR number: 31 red, 33 yellow, 36 cyan) when `on`.
pub fn paint(text: &str, colour: u8, on: bool) -> String {
    if on {
        format!("\x1b[1;{colour}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `text` on one line cut to at most `max` characters: whitespace collapsed, and when it is
/// too long, cut at the last space that fits and ended with `…`, so that no number or name
/// is cut inside (a single word longer than `max` is the one exception).
pub fn fit(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    if max <= 1 {
        return "…".chars().take(max).collect();
    }
    let room: String = one_line.chars().take(max - 1).collect();
    let next = one_line.chars().nth(max - 1);
    if next == Some(' ') {
        return format!("{}…", room.trim_end());
    }
    // The word that would be cut: a number is dropped whole; a name may be cut inside when
    // backing off to the space before it would waste more than a third of the room.
    let space = room.rfind(' ');
    let word = &room[space.map_or(0, |i| i + 1)..];
    let bare = word.trim_matches(|c: char| "()[]{}\"'".contains(c));
    let is_number = bare.chars().any(|c| c.is_ascii_digit())
        && bare
            .chars()
            .all(|c| c.is_ascii_digit() || ".,%-+:".contains(c));
    let cut = match space {
        Some(i) if i > 0 && (is_number || room[..i].chars().count() * 3 >= (max - 1) * 2) => {
            room[..i].trim_end_matches([',', ';', ':', '(', '-'])
        }
        _ if is_number => "",
        _ => room.as_str(),
    };
    format!("{}…", cut.trim_end())
}

/// `text` wrapped at spaces to lines of at most `width` characters, each after `indent`.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let room = width.saturating_sub(indent.chars().count()).max(20);
    let mut out = String::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
                out.push_str(indent);
                out.push_str(&line);
                out.push('\n');
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push_str(indent);
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_between_words_never_inside_a_number() {
        assert_eq!(fit("short  text", 20), "short text");
        let cut = fit("sequence is at 2000000000, 93.1 % of its limit", 30);
        assert_eq!(cut, "sequence is at 2000000000…");
        assert!(cut.chars().count() <= 30);
        assert_eq!(fit("abcdefghij", 5), "abcd…");
        // A long name is cut inside rather than leave the line nearly empty.
        assert_eq!(
            fit("index public.audit_logs_resource_type_idx is unused", 20),
            "index public.audit_…"
        );
        assert_eq!(fit("at 123456789012", 8), "at…");
        assert_eq!(fit("time (3644123 ms)", 10), "time…");
    }

    #[test]
    fn wrap_keeps_words_whole_and_indents() {
        let w = wrap("one two three four five six", 30, "    ");
        for line in w.lines() {
            assert!(line.starts_with("    "));
            assert!(line.chars().count() <= 30, "{line}");
        }
        assert_eq!(w.split_whitespace().count(), 6);
    }

    #[test]
    fn tables_take_the_width_they_are_given() {
        let mut t = table_of_width(80);
        t.set_header(vec!["a", "b"]);
        t.add_row(vec!["x".repeat(50), "y ".repeat(60)]);
        for line in t.to_string().lines() {
            assert!(line.chars().count() <= 80, "{line}");
        }
    }

    #[test]
    fn keep_words_never_splits_a_word() {
        let mut t = table_of_width(60);
        t.set_header(vec!["setting", "current", "reason"]);
        t.add_row(vec![
            "effective_cache_size",
            "4GB",
            "a long reason that wraps between its words and never inside them",
        ]);
        keep_words(&mut t);
        let text = t.to_string();
        assert!(text.contains("effective_cache_size"), "{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= 60, "{line}");
        }
    }

    #[test]
    fn keep_words_in_keeps_the_chosen_columns_and_lets_one_long_value_wrap() {
        let mut t = table_of_width(60);
        t.set_header(vec!["setting", "current", "reason"]);
        t.add_row(vec![
            "shared_preload_libraries",
            "pg_stat_statements,auto_explain,pg_prewarm,pg_hint_plan,passwordcheck",
            "observability",
        ]);
        keep_words_in(&mut t, |c| c == 0);
        let text = t.to_string();
        assert!(text.contains("shared_preload_libraries"), "{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= 60, "{line}");
        }
    }

    #[test]
    fn paint_only_when_asked() {
        assert_eq!(paint("WARNING", 33, false), "WARNING");
        assert!(paint("WARNING", 33, true).starts_with('\x1b'));
    }
}
