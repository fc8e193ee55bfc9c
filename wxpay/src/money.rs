//! Money (docs/wechatpay-v2.md §9): amounts on the API are integer **fen** (`i64`); bills (§8.7) carry
//! **yuan** as decimal text with 2 decimals, and the fee column (手续费) with 5.
//!
//! Conversion parses the decimal string exactly — never through a float (the classic
//! `intval(2257.68*100) = 225767` bug, §8.5). Two units are used:
//!
//! * fen = 0.01 yuan, for every 2-decimal amount ([`yuan_to_fen`]);
//! * milli-fen = 0.001 fen = 0.00001 yuan, for the 5-decimal fee column
//!   ([`yuan_to_millifen`]); `"0.02000"` yuan is 2000 milli-fen, kept exactly.

use std::fmt;

/// Why a yuan string could not be converted (§8.7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid yuan amount {value:?}: {reason}")]
pub struct AmountError {
    /// The text that was refused.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}

/// Convert yuan text with at most `decimals` significant decimals into integer units of
/// 10^-decimals yuan. Trailing zero decimals beyond the precision are accepted.
fn parse_scaled(s: &str, decimals: u32) -> Result<i64, AmountError> {
    let err = |reason| AmountError {
        value: s.to_owned(),
        reason,
    };
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("expected digits before the decimal point"));
    }
    if body.contains('.') && frac_part.is_empty() {
        return Err(err("expected digits after the decimal point"));
    }
    if !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("expected digits after the decimal point"));
    }
    let precision = decimals as usize;
    if frac_part.len() > precision && frac_part[precision..].bytes().any(|b| b != b'0') {
        return Err(err("more decimals than the unit allows"));
    }
    let scale = 10_i64.pow(decimals);
    let mut units: i64 = 0;
    for b in int_part.bytes() {
        units = units
            .checked_mul(10)
            .and_then(|u| u.checked_add(i64::from(b - b'0')))
            .ok_or_else(|| err("amount too large"))?;
    }
    units = units
        .checked_mul(scale)
        .ok_or_else(|| err("amount too large"))?;
    let mut frac_units: i64 = 0;
    for i in 0..precision {
        let digit = frac_part
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        frac_units = frac_units * 10 + digit;
    }
    units = units
        .checked_add(frac_units)
        .ok_or_else(|| err("amount too large"))?;
    Ok(if negative { -units } else { units })
}

/// Yuan text (`"3.05"`, `"0.01"`, `"12"`) → fen, exactly (§8.7).
pub fn yuan_to_fen(s: &str) -> Result<i64, AmountError> {
    parse_scaled(s, 2)
}

/// Yuan text with up to 5 decimals (the 手续费 column, `"0.02000"`) → milli-fen (1/1000 fen),
/// exactly (§8.7).
pub fn yuan_to_millifen(s: &str) -> Result<i64, AmountError> {
    parse_scaled(s, 5)
}

/// Fen as a yuan string with two decimals, e.g. `305` → `"3.05"` (for display).
pub fn fen_to_yuan(fen: i64) -> String {
    Yuan(fen).to_string()
}

struct Yuan(i64);

impl fmt::Display for Yuan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_to_fen_is_exact() {
        assert_eq!(yuan_to_fen("0.01"), Ok(1));
        assert_eq!(yuan_to_fen("3.05"), Ok(305));
        assert_eq!(yuan_to_fen("2257.68"), Ok(225_768));
        assert_eq!(yuan_to_fen("12"), Ok(1200));
        assert_eq!(yuan_to_fen("0.1"), Ok(10));
        assert_eq!(yuan_to_fen("3.050"), Ok(305));
        assert_eq!(yuan_to_fen("-0.01"), Ok(-1));
        for bad in [
            "",
            ".5",
            "1.",
            "1.001",
            "1,00",
            "abc",
            "1e3",
            "+1",
            "99999999999999999999",
        ] {
            assert!(yuan_to_fen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fee_column_keeps_five_decimals() {
        assert_eq!(yuan_to_millifen("0.02000"), Ok(2000));
        assert_eq!(yuan_to_millifen("0.00001"), Ok(1));
        assert_eq!(yuan_to_millifen("0.00000"), Ok(0));
        assert_eq!(yuan_to_millifen("1.23456"), Ok(123_456));
        assert!(yuan_to_millifen("0.000001").is_err());
    }

    #[test]
    fn fen_display() {
        assert_eq!(fen_to_yuan(305), "3.05");
        assert_eq!(fen_to_yuan(1), "0.01");
        assert_eq!(fen_to_yuan(-120), "-1.20");
    }
}
