//! The signature debugger (docs/wechatpay-v2.md §5, §5.4): explain why a message does or does not verify.
//!
//! Exposed by the server as `paydesk wxpay explain --key-file F [--sign-type T]` (message on
//! stdin). [`Explanation::exit_code`] gives that command's status: 0 = signature valid,
//! 1 = invalid, 2 = refused as malformed or forbidden XML, or too large to debug. The key
//! itself never appears in the output: the canonical string ends in
//! `&key=[API key, N chars]`.
//!
//! The debugger runs on bodies anyone can send (the dashboard explains every refused
//! callback), and it signs a canonical string up to a dozen times and reports on every
//! field. So it only works on a bounded input: at most [`MAX_DEBUG_BODY`] bytes,
//! [`MAX_DEBUG_FIELDS`] fields and [`MAX_DEBUG_VALUE`] bytes per value; anything bigger is
//! explained as too large to debug, without being parsed or signed.

use std::fmt;

use serde::Serialize;

use crate::sign::{self, is_signed_field, sign_canonical, SIGN_FIELD, SIGN_TYPE_FIELD};
use crate::{notify, xml, ApiKey, Error, Params, SignType};

/// The largest body the debugger explains: 32 KiB. A real v2 message is 1–3 KiB (a refund
/// notification's encrypted `req_info` included), so every genuine one fits with room to
/// spare, and the debugger's output (the canonical string, one line per field) stays a few
/// times this at most.
pub const MAX_DEBUG_BODY: usize = 32 * 1024;

/// The most fields the debugger explains. The largest v2 message, a payment notification
/// with several coupons (`coupon_fee_$n`, `coupon_id_$n`, `coupon_type_$n`), has about 60.
pub const MAX_DEBUG_FIELDS: usize = 128;

/// The longest value the debugger explains: 8 KiB. The longest v2 field is
/// unifiedorder's `detail` (6,000 bytes at most).
pub const MAX_DEBUG_VALUE: usize = 8 * 1024;

/// Overall result (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The signature verifies (or, for a refund notification, `req_info` decrypts).
    Valid,
    /// It does not; see the diagnosis.
    Invalid,
    /// The body was refused by the strict parser (malformed or forbidden XML, §4.2).
    Refused,
}

/// A parameter left out of the signed string, and why (§5.1 steps 1–2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedField {
    /// Field name.
    pub name: String,
    /// Why it is not signed.
    pub reason: String,
}

/// Where the algorithm used for checking came from (§5.2 rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignTypeSource {
    /// The message's `sign_type` field.
    Field,
    /// The expected type given by the caller (the order's / the request's sign type).
    Expected,
    /// The length of `sign` (32 → MD5, 64 → HMAC-SHA256).
    SignLength,
}

/// What [`explain`] found out about a message (§5.4). `Display` renders it for humans,
/// `Serialize` for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The verdict.
    pub verdict: Verdict,
    /// One line saying what is wrong (or that all is well).
    pub diagnosis: String,
    /// The parser's complaint when the body was refused.
    pub refused: Option<String>,
    /// Whether the refusal was for forbidden (DOCTYPE / entity) content.
    pub forbidden: bool,
    /// The algorithm the message was checked with, if it could be determined.
    pub sign_type: Option<SignType>,
    /// Where that algorithm came from.
    pub sign_type_source: Option<SignTypeSource>,
    /// The `sign` received.
    pub received_sign: Option<String>,
    /// The MD5 signature this key gives.
    pub expected_md5: Option<String>,
    /// The HMAC-SHA256 signature this key gives.
    pub expected_hmac_sha256: Option<String>,
    /// `stringSignTemp` with the key masked.
    pub canonical_string: Option<String>,
    /// The fields that were signed, in signing order.
    pub signed_fields: Vec<String>,
    /// Fields left out, with the reason.
    pub skipped: Vec<SkippedField>,
    /// Things that look wrong but are not necessarily the cause.
    pub warnings: Vec<String>,
    /// Length of the key used (v2 keys have 32 characters).
    pub key_len: usize,
}

impl Explanation {
    /// The exit status of `paydesk wxpay explain`: 0 valid, 1 invalid, 2 refused.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Refused => 2,
        }
    }

    /// Whether the signature is valid.
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// The explanation of a body over one of the debugger's caps: refused unread.
    fn too_large(why: String, key: &ApiKey) -> Self {
        Self::unread(format!("too large to debug: {why}"), why, false, key)
    }

    fn refused(e: &xml::XmlError, key: &ApiKey) -> Self {
        let forbidden = e.is_forbidden();
        let kind = if forbidden {
            "forbidden XML"
        } else {
            "malformed XML"
        };
        Self::unread(
            format!("refused as {kind}: {e}"),
            e.to_string(),
            forbidden,
            key,
        )
    }

    /// A body refused before its fields were read.
    fn unread(diagnosis: String, refused: String, forbidden: bool, key: &ApiKey) -> Self {
        Explanation {
            verdict: Verdict::Refused,
            diagnosis,
            refused: Some(refused),
            forbidden,
            sign_type: None,
            sign_type_source: None,
            received_sign: None,
            expected_md5: None,
            expected_hmac_sha256: None,
            canonical_string: None,
            signed_fields: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
            key_len: key.len(),
        }
    }
}

fn masked(canonical: &str, key: &ApiKey) -> String {
    format!("{canonical}&key=[API key, {} chars]", key.len())
}

/// Canonical string over arbitrary `(name, value)` pairs already filtered by the caller.
fn join(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn matches_any(canonical: &str, key: &ApiKey, received: &str) -> Option<SignType> {
    [SignType::Md5, SignType::HmacSha256]
        .into_iter()
        .find(|&t| sign::signs_equal(&sign_canonical(canonical, key, t), received))
}

/// Explain a message's signature (§5): parse strictly, show the canonical string (key masked),
/// the expected signs for both algorithms and the received one, the skipped fields and why,
/// whitespace warnings, and a one-line diagnosis.
///
/// `expected` is the sign type the message should have been signed with (the order's or the
/// request's); without it the §5.2 rule applies (`sign_type` field, else the sign length).
/// A refund notification (no sign, `req_info`) is valid when `req_info` decrypts with the key.
///
/// A body over [`MAX_DEBUG_BODY`] bytes, [`MAX_DEBUG_FIELDS`] fields or with a value over
/// [`MAX_DEBUG_VALUE`] bytes is refused as too large to debug (exit code 2).
pub fn explain(body: &[u8], key: &ApiKey, expected: Option<SignType>) -> Explanation {
    if body.len() > MAX_DEBUG_BODY {
        let why = format!(
            "the body has {} bytes; the debugger reads at most {MAX_DEBUG_BODY}",
            body.len()
        );
        return Explanation::too_large(why, key);
    }
    let params = match xml::parse(body) {
        Ok(p) => p,
        Err(e) => return Explanation::refused(&e, key),
    };
    if params.len() > MAX_DEBUG_FIELDS {
        let why = format!(
            "the body has {} fields; the debugger reads at most {MAX_DEBUG_FIELDS}",
            params.len()
        );
        return Explanation::too_large(why, key);
    }
    if let Some((name, value)) = params.iter().find(|(_, v)| v.len() > MAX_DEBUG_VALUE) {
        let name: String = name.chars().take(64).collect();
        let why = format!(
            "the value of `{name}` has {} bytes; the debugger reads at most {MAX_DEBUG_VALUE}",
            value.len()
        );
        return Explanation::too_large(why, key);
    }
    let canonical = sign::canonical_string(&params);
    let mut skipped = Vec::new();
    let mut signed_fields = Vec::new();
    let mut warnings = Vec::new();
    for (name, value) in &params {
        if name == SIGN_FIELD {
            skipped.push(SkippedField {
                name: name.clone(),
                reason: "the signature itself is never signed (§5.1 step 1)".into(),
            });
        } else if value.is_empty() {
            skipped.push(SkippedField {
                name: name.clone(),
                reason: "empty value (§5.1 step 2)".into(),
            });
        } else {
            signed_fields.push(name.clone());
        }
        if !value.is_empty() && value.trim() != value {
            let which = match (value.trim_start() != value, value.trim_end() != value) {
                (true, true) => "leading and trailing",
                (true, false) => "leading",
                _ => "trailing",
            };
            warnings.push(format!(
                "value of `{name}` has {which} whitespace (signed as is, §5.4)"
            ));
        }
    }
    if key.len() != 32 {
        warnings.push(format!(
            "the key has {} characters; API v2 keys have 32 (not the AppSecret or the APIv3 key, §3)",
            key.len()
        ));
    }
    if params.contains_key("key") {
        warnings.push("the message has a parameter named `key`; no v2 API has one (§5.4)".into());
    }
    let received = params.get(SIGN_FIELD).filter(|s| !s.is_empty()).cloned();
    let mut out = Explanation {
        verdict: Verdict::Invalid,
        diagnosis: String::new(),
        refused: None,
        forbidden: false,
        sign_type: None,
        sign_type_source: None,
        received_sign: received.clone(),
        expected_md5: Some(sign_canonical(&canonical, key, SignType::Md5)),
        expected_hmac_sha256: Some(sign_canonical(&canonical, key, SignType::HmacSha256)),
        canonical_string: Some(masked(&canonical, key)),
        signed_fields,
        skipped,
        warnings,
        key_len: key.len(),
    };

    let Some(received) = received else {
        out.diagnosis = unsigned_diagnosis(&params, key, &mut out.verdict);
        return out;
    };

    let field_present = params.get(SIGN_TYPE_FIELD).is_some_and(|v| !v.is_empty());
    out.sign_type_source = Some(if field_present {
        SignTypeSource::Field
    } else if expected.is_some() {
        SignTypeSource::Expected
    } else {
        SignTypeSource::SignLength
    });
    let resolved = sign::resolve_sign_type(&params, expected);
    let check_type = match &resolved {
        Ok(t) => Some(*t),
        Err(Error::SignTypeDowngrade) => Some(SignType::Md5),
        Err(_) => None,
    };
    out.sign_type = check_type;

    if let Ok(t) = resolved {
        match sign::verify(&params, key, t) {
            Ok(()) => {
                out.verdict = Verdict::Valid;
                out.diagnosis = format!("signature valid ({t})");
                return out;
            }
            Err(Error::ReservedField { .. }) => {
                out.diagnosis = "refusing a message with a parameter named `key` (§5.4)".into();
                return out;
            }
            Err(_) => {}
        }
    }
    out.diagnosis = invalid_diagnosis(&params, key, expected, &received, &resolved, &canonical);
    out
}

fn unsigned_diagnosis(params: &Params, key: &ApiKey, verdict: &mut Verdict) -> String {
    if let Some(req_info) = params.get("req_info").filter(|v| !v.is_empty()) {
        return match notify::decrypt_req_info(req_info, key) {
            Ok(_) => {
                *verdict = Verdict::Valid;
                "refund notification: unsigned by design (§8.9); req_info decrypts with this key"
                    .into()
            }
            Err(e) => format!(
                "refund notification: req_info does not decrypt with this key ({e}): key mismatch?"
            ),
        };
    }
    if params.get("return_code").map(String::as_str) == Some("FAIL") {
        let msg = params.get("return_msg").map(String::as_str).unwrap_or("");
        return format!(
            "return_code=FAIL envelope ({msg}): unsigned by design, nothing to verify (§6)"
        );
    }
    "message has no sign".into()
}

fn invalid_diagnosis(
    params: &Params,
    key: &ApiKey,
    expected: Option<SignType>,
    received: &str,
    resolved: &Result<SignType, Error>,
    canonical: &str,
) -> String {
    let t = match resolved {
        Ok(t) => *t,
        Err(Error::SignTypeDowngrade) => {
            let md5_ok = matches_any(canonical, key, received) == Some(SignType::Md5);
            return if md5_ok {
                "signed with MD5 but the order is HMAC-SHA256 (downgrade refused, §5.2)".into()
            } else {
                "sign_type says MD5 but the order is HMAC-SHA256 (downgrade refused, §5.2); the MD5 sign does not match either".into()
            };
        }
        Err(Error::UnsupportedSignType { value }) => {
            return format!("sign_type {value:?} is not supported: exactly \"MD5\" or \"HMAC-SHA256\", case-sensitive (§5.2)");
        }
        Err(_) => {
            return format!(
                "sign has {} characters; expected 32 (MD5) or 64 (HMAC-SHA256) uppercase hex",
                received.len()
            );
        }
    };
    let upper = received.to_ascii_uppercase();
    if upper != received && sign::signs_equal(&sign_canonical(canonical, key, t), &upper) {
        return "sign is lowercase hex; WeChat signs are uppercase and compared case-sensitively (§5.3, §14.2)".into();
    }
    let other = t.other();
    if sign::signs_equal(&sign_canonical(canonical, key, other), received) {
        let field = params.get(SIGN_TYPE_FIELD).filter(|v| !v.is_empty());
        return match (field, expected) {
            (Some(_), _) => format!("signed with {other} but sign_type says {t}"),
            (None, Some(_)) => format!("signed with {other} but the order is {t}"),
            (None, None) => format!("signed with {other} but checked as {t}"),
        };
    }
    // Variants a signer might have used by mistake (§5.4).
    let trimmed: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, v)| k.as_str() != SIGN_FIELD && !v.trim().is_empty())
        .map(|(k, v)| (k.as_str(), v.trim()))
        .collect();
    if let Some(found) = matches_any(&join(&trimmed), key, received) {
        let fields: Vec<&str> = params
            .iter()
            .filter(|(_, v)| !v.is_empty() && v.trim() != v.as_str())
            .map(|(k, _)| k.as_str())
            .collect();
        let which = fields
            .first()
            .map(|f| {
                let v = &params[*f];
                if v.trim_end() != v.as_str() {
                    "trailing"
                } else {
                    "leading"
                }
            })
            .unwrap_or("trailing");
        return format!(
            "value has {which} whitespace: `{}` was trimmed by the signer before signing ({found}; official Java SDK behaviour, §5.4)",
            fields.join("`, `")
        );
    }
    if params.get(SIGN_TYPE_FIELD).is_some_and(|v| !v.is_empty()) {
        let without: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, v)| is_signed_field(k, v) && k.as_str() != SIGN_TYPE_FIELD)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(found) = matches_any(&join(&without), key, received) {
            return format!("sign_type was left out of the signed string ({found}); it must be signed like any field (§5.2)");
        }
    }
    if params.iter().any(|(k, v)| k != SIGN_FIELD && v.is_empty()) {
        let with_empty: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| k.as_str() != SIGN_FIELD)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(found) = matches_any(&join(&with_empty), key, received) {
            return format!(
                "empty values were signed ({found}); they must be skipped (§5.1 step 2)"
            );
        }
    }
    if key.len() != 32 {
        return format!(
            "key mismatch: the key has {} characters, API v2 keys have 32 (AppSecret or APIv3 key used?)",
            key.len()
        );
    }
    "key mismatch (or the message was altered after signing): no variant matches with this key"
        .into()
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Valid => "VALID",
            Verdict::Invalid => "INVALID",
            Verdict::Refused => "REFUSED",
        };
        writeln!(f, "verdict:    {verdict} (exit {})", self.exit_code())?;
        writeln!(f, "diagnosis:  {}", self.diagnosis)?;
        if let Some(r) = &self.refused {
            writeln!(f, "parser:     {r}")?;
            return Ok(());
        }
        if let Some(t) = self.sign_type {
            let source = match self.sign_type_source {
                Some(SignTypeSource::Field) => "from the sign_type field",
                Some(SignTypeSource::Expected) => "the expected sign type",
                Some(SignTypeSource::SignLength) => "guessed from the sign length",
                None => "",
            };
            writeln!(f, "sign type:  {t} ({source})")?;
        }
        writeln!(
            f,
            "received sign:        {}",
            self.received_sign.as_deref().unwrap_or("(none)")
        )?;
        if let Some(s) = &self.expected_md5 {
            writeln!(f, "expected MD5:         {s}")?;
        }
        if let Some(s) = &self.expected_hmac_sha256 {
            writeln!(f, "expected HMAC-SHA256: {s}")?;
        }
        if let Some(c) = &self.canonical_string {
            writeln!(f, "string signed:        {c}")?;
        }
        if !self.skipped.is_empty() {
            writeln!(f, "skipped fields:")?;
            for s in &self.skipped {
                writeln!(f, "  {:<24} {}", s.name, s.reason)?;
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f, "warnings:")?;
            for w in &self.warnings {
                writeln!(f, "  - {w}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn signed(pairs: &[(&str, &str)], t: SignType) -> Params {
        let mut p: Params = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let s = sign::sign(&p, &ApiKey::new(KEY), t);
        p.insert("sign".into(), s);
        p
    }

    fn run(p: &Params, expected: Option<SignType>) -> Explanation {
        explain(xml::write(p).as_bytes(), &ApiKey::new(KEY), expected)
    }

    #[test]
    fn valid_message() {
        let e = run(&signed(&[("a", "1"), ("b", "")], SignType::Md5), None);
        assert_eq!(e.exit_code(), 0, "{e}");
        assert!(e
            .canonical_string
            .as_deref()
            .unwrap()
            .ends_with("&key=[API key, 32 chars]"));
        assert!(!e.to_string().contains(KEY));
        assert!(!serde_json::to_string(&e).unwrap().contains(KEY));
        assert_eq!(e.skipped.len(), 2);
    }

    #[test]
    fn md5_for_hmac_order() {
        let e = run(
            &signed(&[("a", "1")], SignType::Md5),
            Some(SignType::HmacSha256),
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.diagnosis, "signed with MD5 but the order is HMAC-SHA256");
    }

    #[test]
    fn trimmed_by_signer() {
        let mut p = signed(&[("a", "1"), ("attach", "x")], SignType::Md5);
        p.insert("attach".into(), "x ".into());
        let e = run(&p, None);
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.diagnosis.starts_with("value has trailing whitespace"),
            "{}",
            e.diagnosis
        );
    }

    #[test]
    fn key_mismatch_and_refusals() {
        let mut p = signed(&[("a", "1")], SignType::Md5);
        p.insert("a".into(), "2".into());
        assert!(run(&p, None).diagnosis.starts_with("key mismatch"));
        let e = explain(b"<!DOCTYPE x><xml/>", &ApiKey::new(KEY), None);
        assert_eq!(e.exit_code(), 2);
        assert!(e.forbidden);
        assert_eq!(explain(b"<xml><a>", &ApiKey::new(KEY), None).exit_code(), 2);
    }

    #[test]
    fn bodies_over_the_caps_are_too_large_to_debug() {
        let key = ApiKey::new(KEY);
        let fields: Params = (0..=MAX_DEBUG_FIELDS)
            .map(|i| (format!("f{i}"), "1".to_owned()))
            .collect();
        let long_value = signed(&[("a", &"v".repeat(MAX_DEBUG_VALUE + 1))], SignType::Md5);
        let big = format!("<xml>{}</xml>", "<a>1</a>".repeat(MAX_DEBUG_BODY / 8));
        for (body, says) in [
            (xml::write(&fields), "fields"),
            (xml::write(&long_value), "the value of `a`"),
            (big, "bytes; the debugger reads at most 32768"),
        ] {
            let e = explain(body.as_bytes(), &key, None);
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(e.diagnosis.starts_with("too large to debug: "), "{e}");
            assert!(e.diagnosis.contains(says), "{e}");
            assert_eq!(e.canonical_string, None);
            // A few short lines whatever the body's size: nothing of it is echoed.
            assert!(e.to_string().len() < 400, "{e}");
        }
        // At the caps it is still explained.
        let at_cap = signed(&[("a", &"v".repeat(MAX_DEBUG_VALUE))], SignType::Md5);
        assert_eq!(run(&at_cap, None).exit_code(), 0);
    }

    #[test]
    fn lowercase_sign() {
        let mut p = signed(&[("a", "1")], SignType::HmacSha256);
        let lower = p["sign"].to_ascii_lowercase();
        p.insert("sign".into(), lower);
        let e = run(&p, None);
        assert_eq!(e.exit_code(), 1);
        assert!(e.diagnosis.starts_with("sign is lowercase hex"));
    }
}
