//! The library's argument enums as clap values: the library itself knows no clap, so their
//! [`clap::ValueEnum`] lives here (names and help as the derive gave them).

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::governance::Mix;
use crate::report::Format;

impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[Format::Table, Format::Json, Format::Markdown]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Markdown => "markdown",
        }))
    }
}

impl ValueEnum for Mix {
    fn value_variants<'a>() -> &'a [Self] {
        &[Mix::ReadHeavy, Mix::WriteHeavy]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Mix::ReadHeavy => {
                PossibleValue::new("read-heavy").help("About 90 % reads: the platform in daily use")
            }
            Mix::WriteHeavy => PossibleValue::new("write-heavy")
                .help("About 55 % writes: an incident or a bulk import"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_the_derive_named_them() {
        assert_eq!(Format::from_str("markdown", false), Ok(Format::Markdown));
        assert_eq!(Format::from_str("json", false), Ok(Format::Json));
        assert_eq!(Mix::from_str("write-heavy", false), Ok(Mix::WriteHeavy));
        assert_eq!(Mix::from_str("read-heavy", false), Ok(Mix::ReadHeavy));
        assert!(Mix::from_str("both", false).is_err());
    }
}
