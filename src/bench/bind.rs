//! Script variables as bind parameters.
//!
//! pgbench sends every parameter as untyped text and lets the server infer its type. pgopt
//! does the same: statements are prepared without parameter types, and each [`Value`] is
//! sent in text format for the type the server inferred ([`Statement::params`]), so an int8
//! variable compared to an int4 or text column, or a double, works as it does in pgbench.
//! Before sending, [`check`] refuses a value that cannot be read as the inferred type
//! (a double or a too large integer for an int4, a boolean for a number, ...) with an error
//! naming the variable and the statement, instead of a server error about `$1`.
//!
//! [`Statement::params`]: tokio_postgres::Statement::params

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, Format, IsNull, ToSql, Type};

use super::expr::Value;

impl ToSql for Value {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.to_text() {
            None => Ok(IsNull::Yes),
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// Whether `value` can be read as `ty`; the error says why not. Types pgopt does not know are
/// left to the server (it reads the text and reports a failure under its SQLSTATE).
pub fn check(value: &Value, ty: &Type) -> std::result::Result<(), String> {
    if *value == Value::Null {
        return Ok(());
    }
    let int_range = |lo: i128, hi: i128| -> std::result::Result<(), String> {
        let i = match value {
            Value::Int(i) => *i as i128,
            Value::Double(d) if d.fract() == 0.0 && d.abs() < 1e15 => *d as i128,
            other => {
                return Err(format!(
                    "{} {} is not an integer",
                    other.type_name(),
                    other.to_text().unwrap_or_default()
                ))
            }
        };
        if i < lo || i > hi {
            return Err(format!("{i} is out of range"));
        }
        Ok(())
    };
    match *ty {
        Type::INT2 => int_range(i16::MIN as i128, i16::MAX as i128),
        Type::INT4 | Type::OID => int_range(i32::MIN as i128, i32::MAX as i128),
        Type::INT8 => int_range(i64::MIN as i128, i64::MAX as i128),
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => match value {
            Value::Int(_) | Value::Double(_) => Ok(()),
            Value::Text(t) if t.trim().parse::<f64>().is_ok() => Ok(()),
            other => Err(format!("a {} is not a number", other.type_name())),
        },
        Type::BOOL => match value {
            Value::Bool(_) | Value::Int(0) | Value::Int(1) => Ok(()),
            other => Err(format!("a {} is not a boolean", other.type_name())),
        },
        _ => Ok(()),
    }
}

/// The message for a value that does not fit: names the variable, the parameter, its type
/// and the statement.
pub fn misfit(why: &str, var: &str, n: usize, ty: &Type, statement: &str, line: usize) -> String {
    format!(
        "the value of :{var} does not fit parameter ${n} of statement {statement} (line \
         {line}), which the server typed {ty}: {why}. Cast it in the SQL (:{var}::TYPE) or \
         compute a value of that type"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Value, ty: Type) -> Option<String> {
        let mut out = BytesMut::new();
        match v.to_sql(&ty, &mut out).unwrap() {
            IsNull::Yes => None,
            IsNull::No => Some(String::from_utf8(out.to_vec()).unwrap()),
        }
    }

    #[test]
    fn values_are_sent_as_text_for_every_type() {
        assert!(matches!(
            Value::Int(5).encode_format(&Type::INT4),
            Format::Text
        ));
        assert!(<Value as ToSql>::accepts(&Type::NUMERIC));
        assert_eq!(text(Value::Int(42), Type::INT4).as_deref(), Some("42"));
        assert_eq!(
            text(Value::Double(2.5), Type::FLOAT8).as_deref(),
            Some("2.5")
        );
        assert_eq!(
            text(Value::Double(2.5), Type::NUMERIC).as_deref(),
            Some("2.5")
        );
        assert_eq!(text(Value::Int(7), Type::TEXT).as_deref(), Some("7"));
        assert_eq!(text(Value::Bool(true), Type::BOOL).as_deref(), Some("true"));
        assert_eq!(text(Value::Null, Type::INT8), None);
    }

    #[test]
    fn values_that_do_not_fit_the_inferred_type_are_refused_with_the_reason() {
        assert!(check(&Value::Int(5), &Type::INT2).is_ok());
        assert!(check(&Value::Int(40_000), &Type::INT2)
            .unwrap_err()
            .contains("out of range"));
        assert!(check(&Value::Int(1 << 40), &Type::INT4)
            .unwrap_err()
            .contains("out of range"));
        assert!(check(&Value::Int(1 << 40), &Type::INT8).is_ok());
        assert!(check(&Value::Double(3.0), &Type::INT4).is_ok());
        assert!(check(&Value::Double(2.5), &Type::INT4)
            .unwrap_err()
            .contains("not an integer"));
        assert!(check(&Value::Double(2.5), &Type::FLOAT4).is_ok());
        assert!(check(&Value::Int(2), &Type::NUMERIC).is_ok());
        assert!(check(&Value::Bool(true), &Type::FLOAT8).is_err());
        for ty in [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::UNKNOWN] {
            assert!(check(&Value::Double(2.5), &ty).is_ok(), "{ty}");
        }
        assert!(check(&Value::Null, &Type::INT4).is_ok());
        let m = misfit("2.5 is not an integer", "x", 1, &Type::INT4, "w:2", 3);
        assert!(m.contains(":x") && m.contains("$1") && m.contains("w:2") && m.contains("int4"));
    }
}
