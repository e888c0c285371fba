//! Quoting of SQL identifiers.
//!
//! A catalog name reaches SQL text only as an [`Ident`] or a [`QualifiedName`]: their
//! `Display` always writes a double-quoted, escaped identifier, so a table called
//! `x"; DROP TABLE users; --` stays one harmless name. Values never go through here:
//! they are bind parameters.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One SQL identifier, quoted whenever it is written into SQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ident(String);

impl Ident {
    pub fn new(name: impl AsRef<str>) -> Self {
        Ident(name.as_ref().to_string())
    }

    /// The raw name, unquoted (for display to people and for bind parameters).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    /// Writes `"name"` with every `"` doubled, as PostgreSQL's quote_ident does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for part in self.0.split_inclusive('"') {
            f.write_str(part)?;
            if part.ends_with('"') {
                f.write_str("\"")?;
            }
        }
        f.write_str("\"")
    }
}

/// `schema.name`, each part quoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QualifiedName {
    pub schema: Ident,
    pub name: Ident,
}

impl QualifiedName {
    pub fn new(schema: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        QualifiedName {
            schema: Ident::new(schema),
            name: Ident::new(name),
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Quotes a string as an SQL literal (`'it''s'`). Only for the few places where PostgreSQL
/// takes no bind parameter (ALTER SYSTEM values, CREATE DATABASE options), and for the SQL
/// that pgopt prints for people to run.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let has_backslash = value.contains('\\');
    if has_backslash {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_name_stays_one_identifier() {
        let q = QualifiedName::new("public", r#"x"; DROP TABLE users; --"#);
        assert_eq!(q.to_string(), r#""public"."x""; DROP TABLE users; --""#);
    }

    #[test]
    fn plain_and_empty_names_are_quoted() {
        assert_eq!(Ident::new("users").to_string(), r#""users""#);
        assert_eq!(Ident::new("").to_string(), r#""""#);
        assert_eq!(Ident::new(r#""""#).to_string(), r#""""""""#);
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\b"), r"E'a\\b'");
    }
}
