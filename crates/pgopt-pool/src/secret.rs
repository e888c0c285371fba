//! A password that never prints.
//!
//! Its own file so that the places that hold a password (the target, the password file)
//! share the type without importing each other.

/// A password that never shows in Debug or Display.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    ///
    /// ```
    /// use pgopt_pool::Secret;
    ///
    /// let s = Secret::new("hunter2");
    /// assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
    /// assert_eq!(s.expose(), "hunter2");
    /// ```
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The password itself, for the one place that sends it (the connect). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}
