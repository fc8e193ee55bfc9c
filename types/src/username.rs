//! Staff usernames: parsed once, stored lowercase.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A valid staff username: 2–32 characters of `a-z 0-9 _ . -`, stored lowercase so that
/// `Admin` and `admin` cannot be two accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

/// Why a string is not a username.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Shorter than 2 or longer than 32 characters.
    #[error("a username has 2 to 32 characters")]
    Length,
    /// A character outside `a-z 0-9 _ . -`.
    #[error("a username may only contain letters, digits, '_', '.' and '-'")]
    Charset,
}

impl Username {
    /// Parses and normalises (trims, lowercases) a username.
    pub fn parse(s: &str) -> Result<Self, UsernameError> {
        let s = s.trim().to_ascii_lowercase();
        if !(2..=32).contains(&s.chars().count()) {
            return Err(UsernameError::Length);
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(UsernameError::Charset);
        }
        Ok(Username(s))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_lowercased() {
        assert_eq!(Username::parse("  Alice.W ").unwrap().as_str(), "alice.w");
    }

    #[test]
    fn bad_usernames_are_refused_with_a_reason() {
        assert_eq!(Username::parse("a"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"x".repeat(33)), Err(UsernameError::Length));
        assert_eq!(Username::parse("bob smith"), Err(UsernameError::Charset));
        assert_eq!(Username::parse("张三"), Err(UsernameError::Charset));
        assert_eq!(Username::parse("bob'--"), Err(UsernameError::Charset));
    }
}
