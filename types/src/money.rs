//! Money is integer fen (1 yuan = 100 fen) everywhere; this is its one formatter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of money in fen. Never a float (docs/wechatpay-v2.md §8.5: `intval(2257.68*100)`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl Fen {
    /// The amount in fen.
    pub fn get(self) -> i64 {
        self.0
    }

    /// `¥12.34`, `-¥0.05`, `¥1,234,567.00` — the dashboard's one money format.
    pub fn display_yuan(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let yuan = abs / 100;
        let fen = abs % 100;
        format!("{sign}¥{}.{fen:02}", grouped(yuan))
    }
}

/// `1234567` as `1,234,567` (amounts, byte counts).
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_yuan())
    }
}

/// An amount typed by a person that is not a valid yuan amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an amount in yuan with at most two decimals: {0:?}")]
pub struct ParseFenError(pub String);

impl FromStr for Fen {
    type Err = ParseFenError;

    /// Parses what a person types as yuan (`12`, `12.3`, `12.34`, `¥1,234.50`) exactly,
    /// without going through a float.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseFenError(s.to_owned());
        let trimmed = s.trim();
        let (neg, unsigned) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let cleaned: String = unsigned
            .trim_start_matches(['¥', '￥'])
            .chars()
            .filter(|c| *c != ',')
            .collect();
        let body = cleaned.as_str();
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        if !int_part.chars().all(|c| c.is_ascii_digit())
            || !frac_part.chars().all(|c| c.is_ascii_digit())
            || frac_part.len() > 2
            || int_part.len() > 15
        {
            return Err(err());
        }
        let yuan: i64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err())?
        };
        let fen: i64 = match frac_part.len() {
            0 => 0,
            1 => frac_part.parse::<i64>().map_err(|_| err())? * 10,
            _ => frac_part.parse().map_err(|_| err())?,
        };
        let total = yuan
            .checked_mul(100)
            .and_then(|v| v.checked_add(fen))
            .ok_or_else(err)?;
        Ok(Fen(if neg { -total } else { total }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_yuan_with_grouping_and_two_decimals() {
        assert_eq!(Fen(1234).display_yuan(), "¥12.34");
        assert_eq!(Fen(5).display_yuan(), "¥0.05");
        assert_eq!(Fen(-5).display_yuan(), "-¥0.05");
        assert_eq!(Fen(123_456_700).display_yuan(), "¥1,234,567.00");
        assert_eq!(Fen(0).display_yuan(), "¥0.00");
    }

    #[test]
    fn parses_typed_yuan_exactly() {
        assert_eq!("2257.68".parse::<Fen>().unwrap(), Fen(225768));
        assert_eq!("12.3".parse::<Fen>().unwrap(), Fen(1230));
        assert_eq!("¥1,234.50".parse::<Fen>().unwrap(), Fen(123450));
        assert_eq!(".5".parse::<Fen>().unwrap(), Fen(50));
        assert!("1.234".parse::<Fen>().is_err());
        assert!("abc".parse::<Fen>().is_err());
        assert!("".parse::<Fen>().is_err());
        assert!("1e3".parse::<Fen>().is_err());
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(fen in -10_000_000_000_000i64..10_000_000_000_000i64) {
            prop_assert_eq!(Fen(fen).display_yuan().parse::<Fen>().unwrap(), Fen(fen));
        }
    }
}
