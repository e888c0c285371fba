//! `--tables` and `--exclude`: which tables maintenance covers, by name or glob.
//!
//! A pattern with a dot matches `schema.table`; without one, the table name in any schema.
//! `*` matches any run of characters and `?` one character; everything else matches itself
//! (names are compared as PostgreSQL stores them, case included).

use super::Options;

/// Whether `table` (`schema.name`) is covered: named by `--tables` (or no `--tables` given)
/// and not by `--exclude`.
pub fn selected(table: &str, opts: &Options) -> bool {
    let matches = |pattern: &String| {
        if pattern.contains('.') {
            glob_match(pattern, table)
        } else {
            let name = table.split_once('.').map_or(table, |(_, n)| n);
            glob_match(pattern, name)
        }
    };
    (opts.tables.is_empty() || opts.tables.iter().any(matches)) && !opts.exclude.iter().any(matches)
}

/// `*` and `?` glob matching of the whole of `text`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(tables: &[&str], exclude: &[&str]) -> Options {
        Options {
            tables: tables.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        }
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("audit_*", "audit_2024"));
        assert!(glob_match("audit_*", "audit_"));
        assert!(!glob_match("audit_*", "xaudit_1"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*log*", "changelog_old"));
        assert!(glob_match("public.*", "public.users"));
        assert!(!glob_match("orders", "orders_old"));
    }

    #[test]
    fn tables_and_exclude_select_by_name_schema_or_glob() {
        assert!(selected("public.users", &opts(&[], &[])));
        assert!(selected("public.users", &opts(&["users"], &[])));
        assert!(!selected("public.orders", &opts(&["users"], &[])));
        assert!(selected("app.users", &opts(&["app.*"], &[])));
        assert!(!selected("public.users", &opts(&["app.*"], &[])));
        assert!(!selected("public.audit_1", &opts(&[], &["audit_*"])));
        assert!(selected("public.audits", &opts(&[], &["audit_*"])));
        assert!(!selected(
            "public.users",
            &opts(&["users"], &["public.users"])
        ));
    }
}
