//! Signatures (docs/wechatpay-v2.md §5): canonical string, MD5 / HMAC-SHA256, constant-time verification,
//! the sign-type resolution rule for notifications (§5.2) and `paySign` for
//! `wx.requestPayment` (§5.5).

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{Error, Params};

/// The parameter that carries the signature; never part of the signed string (§5.1 step 1).
pub const SIGN_FIELD: &str = "sign";
/// The optional parameter naming the algorithm; signed like any other parameter (§5.2).
pub const SIGN_TYPE_FIELD: &str = "sign_type";

/// Signature algorithm of API v2 (§5.1, §5.2).
///
/// The textual forms are exact and case-sensitive: `MD5` and `HMAC-SHA256` (lowercase `md5`
/// is rejected by WeChat with `签名类型不支持`, §5.2). The default is MD5, as on the wire when
/// `sign_type` is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum SignType {
    /// `MD5` (default when `sign_type` is absent, §5.2).
    #[default]
    Md5,
    /// `HMAC-SHA256`, keyed with the API key (§5.1 step 6).
    HmacSha256,
}

impl SignType {
    /// The exact wire value: `"MD5"` or `"HMAC-SHA256"` (§5.2).
    pub const fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// Length of a signature of this type in hex characters: 32 or 64 (§9).
    pub const fn sign_len(self) -> usize {
        match self {
            SignType::Md5 => 32,
            SignType::HmacSha256 => 64,
        }
    }

    /// Guess the algorithm from the length of a received `sign` (rule (3) of §5.2).
    pub fn from_sign_len(len: usize) -> Option<SignType> {
        match len {
            32 => Some(SignType::Md5),
            64 => Some(SignType::HmacSha256),
            _ => None,
        }
    }

    /// The other algorithm (used by the signature debugger, §5.4).
    pub const fn other(self) -> SignType {
        match self {
            SignType::Md5 => SignType::HmacSha256,
            SignType::HmacSha256 => SignType::Md5,
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a `sign_type` value is not exactly `MD5` or `HMAC-SHA256` (§5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported sign_type {0:?}: expected exactly \"MD5\" or \"HMAC-SHA256\" (case-sensitive)"
)]
pub struct UnknownSignType(pub String);

impl FromStr for SignType {
    type Err = UnknownSignType;

    /// Exact, case-sensitive parse (§5.2).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "MD5" => Ok(SignType::Md5),
            "HMAC-SHA256" => Ok(SignType::HmacSha256),
            other => Err(UnknownSignType(other.to_owned())),
        }
    }
}

/// For reading a stored `sign_type` column straight into the enum.
impl TryFrom<String> for SignType {
    type Error = UnknownSignType;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl Serialize for SignType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SignType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The merchant's API v2 key (§3): 32 characters, used for every v2 signature and for the
/// refund-notification key derivation (§8.9).
///
/// The value is zeroed on drop; `Debug` prints `[redacted]` and there is no `Display`, so the
/// key cannot end up in logs by accident (§11.2 item 9).
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Wrap a key. No validation happens here: [`crate::Client::new`] checks the length
    /// (§3, exactly 32) because tests and the debugger must be able to use any key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(Zeroizing::new(key.into()))
    }

    /// Read a key file (e.g. `paydesk wxpay explain --key-file F`): the content with
    /// surrounding whitespace (a trailing newline) removed.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let raw = Zeroizing::new(std::fs::read_to_string(path)?);
        Ok(ApiKey::new(raw.trim()))
    }

    /// The key itself. Only call this where the key is really needed (signing, derivation).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (the debugger reports it; v2 keys have 32, §3).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl From<String> for ApiKey {
    fn from(value: String) -> Self {
        ApiKey::new(value)
    }
}

/// Whether a parameter takes part in the signed string: everything except `sign` and empty
/// values (§5.1 steps 1–2; `"0"` is not empty).
pub fn is_signed_field(name: &str, value: &str) -> bool {
    name != SIGN_FIELD && !value.is_empty()
}

/// `stringA` of §5.1: the signed parameters sorted by byte order (the `BTreeMap` order) and
/// joined as `name=value` with `&`, values raw (no URL or XML escaping). Without the key.
pub fn canonical_string(params: &Params) -> String {
    let mut out = String::with_capacity(params.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (name, value) in params {
        if !is_signed_field(name, value) {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// `stringSignTemp` of §5.1: `stringA + "&key=" + key`. It contains the key: never log it.
fn string_sign_temp(canonical: &str, key: &ApiKey) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(canonical.len() + 5 + key.len()));
    s.push_str(canonical);
    s.push_str("&key=");
    s.push_str(key.expose());
    s
}

/// Hash an already built canonical string (§5.1 steps 5–7): uppercase hex.
pub fn sign_canonical(canonical: &str, key: &ApiKey, sign_type: SignType) -> String {
    let message = string_sign_temp(canonical, key);
    let mut out = match sign_type {
        SignType::Md5 => hex::encode(Md5::digest(message.as_bytes())),
        SignType::HmacSha256 => {
            // `new_from_slice` accepts keys of any length for HMAC; the error type exists only
            // for fixed-size MACs, so this cannot fail.
            let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
                .expect("HMAC accepts keys of any length");
            mac.update(message.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
    };
    out.make_ascii_uppercase();
    out
}

/// Sign a parameter map (§5.1): excludes `sign` and empty values, sorts by byte order,
/// appends `&key=`, hashes with `sign_type`, uppercase hex. When the map carries a
/// `sign_type` parameter it is signed like any other (§5.2); this function does not add it.
pub fn sign(params: &Params, key: &ApiKey, sign_type: SignType) -> String {
    sign_canonical(&canonical_string(params), key, sign_type)
}

/// Constant-time comparison of a received sign with the expected one (§5.3). Case-sensitive:
/// a lowercase hex `sign` does not match (§14.2, see the crate docs).
pub fn signs_equal(expected: &str, received: &str) -> bool {
    expected.as_bytes().ct_eq(received.as_bytes()).into()
}

/// Verify the `sign` of a received message with a known algorithm (§5.1, §5.3).
///
/// Errors: [`Error::MissingSign`] when `sign` is absent or empty; [`Error::ReservedField`] when
/// the message has a parameter literally named `key` (§5.4: no v2 API has one, treat it as
/// invalid input); [`Error::BadSignature`] when the signature does not match.
pub fn verify(params: &Params, key: &ApiKey, sign_type: SignType) -> Result<(), Error> {
    let received = match params.get(SIGN_FIELD) {
        Some(s) if !s.is_empty() => s,
        _ => return Err(Error::MissingSign),
    };
    if params.contains_key("key") {
        return Err(Error::ReservedField {
            field: "key".into(),
        });
    }
    let expected = sign(params, key, sign_type);
    if signs_equal(&expected, received) {
        Ok(())
    } else {
        Err(Error::BadSignature)
    }
}

/// Decide which algorithm a *notification* must have been signed with (§5.2 rule):
/// (1) the `sign_type` field if present, else (2) the sign type stored with the order, else
/// (3) the length of `sign` (32 → MD5, 64 → HMAC-SHA256). An MD5 signature is never accepted
/// for an order created with HMAC-SHA256 ([`Error::SignTypeDowngrade`]).
///
/// An empty `sign_type` element counts as absent (empty values are not transmitted, §5.1).
pub fn resolve_sign_type(
    params: &Params,
    order_sign_type: Option<SignType>,
) -> Result<SignType, Error> {
    let from_field = match params.get(SIGN_TYPE_FIELD).map(String::as_str) {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<SignType>()
                .map_err(|e| Error::UnsupportedSignType { value: e.0 })?,
        ),
    };
    let resolved = match (from_field, order_sign_type) {
        (Some(t), _) => t,
        (None, Some(t)) => t,
        (None, None) => {
            let len = params.get(SIGN_FIELD).map_or(0, String::len);
            if len == 0 {
                return Err(Error::MissingSign);
            }
            SignType::from_sign_len(len).ok_or(Error::BadSignature)?
        }
    };
    if order_sign_type == Some(SignType::HmacSha256) && resolved == SignType::Md5 {
        return Err(Error::SignTypeDowngrade);
    }
    Ok(resolved)
}

/// Verify a notification-style message whose algorithm follows the §5.2 rule (see
/// [`resolve_sign_type`]). Returns the algorithm that verified.
pub fn verify_resolved(
    params: &Params,
    key: &ApiKey,
    order_sign_type: Option<SignType>,
) -> Result<SignType, Error> {
    match params.get(SIGN_FIELD) {
        Some(s) if !s.is_empty() => {}
        _ => return Err(Error::MissingSign),
    }
    let sign_type = resolve_sign_type(params, order_sign_type)?;
    verify(params, key, sign_type)?;
    Ok(sign_type)
}

/// A random `nonce_str` (§8 common fields, §9): 32 characters of `[A-Za-z0-9]`.
pub fn nonce_str() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// `paySign` for `wx.requestPayment` (§5.5): the §5.1 algorithm over exactly the five
/// camelCase parameters `appId`, `timeStamp`, `nonceStr`, `package`, `signType`. The
/// `signType` value signed is `sign_type.as_str()` and must equal the unifiedorder
/// `sign_type`.
pub fn pay_sign(
    app_id: &str,
    time_stamp: &str,
    nonce_str: &str,
    package: &str,
    sign_type: SignType,
    key: &ApiKey,
) -> String {
    sign(
        &pay_sign_params(app_id, time_stamp, nonce_str, package, sign_type),
        key,
        sign_type,
    )
}

fn pay_sign_params(
    app_id: &str,
    time_stamp: &str,
    nonce_str: &str,
    package: &str,
    sign_type: SignType,
) -> Params {
    Params::from([
        ("appId".to_owned(), app_id.to_owned()),
        ("timeStamp".to_owned(), time_stamp.to_owned()),
        ("nonceStr".to_owned(), nonce_str.to_owned()),
        ("package".to_owned(), package.to_owned()),
        ("signType".to_owned(), sign_type.as_str().to_owned()),
    ])
}

/// The object the backend returns to the Mini Program for `wx.requestPayment` (§5.5, §8.2).
///
/// Serialises with the camelCase names `timeStamp`, `nonceStr`, `package`, `signType`,
/// `paySign` (`appId` is signed but not passed to `wx.requestPayment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsapiPayParams {
    /// Unix time in seconds as a string (10 digits, not milliseconds).
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// Random string ≤ 32 characters.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `prepay_id=<prepay_id>`, used verbatim (the `=` is part of the value).
    pub package: String,
    /// Must equal the unifiedorder `sign_type`.
    #[serde(rename = "signType")]
    pub sign_type: SignType,
    /// The signature over the five parameters.
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}

impl JsapiPayParams {
    /// Build the parameters for `prepay_id` now (current time, fresh nonce) (§5.5).
    pub fn new(app_id: &str, prepay_id: &str, sign_type: SignType, key: &ApiKey) -> Self {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Self::with(app_id, prepay_id, sign_type, key, now, nonce_str())
    }

    /// Deterministic constructor (fixed time and nonce) for tests and the simulator (§5.5).
    pub fn with(
        app_id: &str,
        prepay_id: &str,
        sign_type: SignType,
        key: &ApiKey,
        unix_seconds: i64,
        nonce_str: String,
    ) -> Self {
        let time_stamp = unix_seconds.to_string();
        let package = format!("prepay_id={prepay_id}");
        let pay_sign = pay_sign(app_id, &time_stamp, &nonce_str, &package, sign_type, key);
        JsapiPayParams {
            time_stamp,
            nonce_str,
            package,
            sign_type,
            pay_sign,
        }
    }

    /// Check `pay_sign` against `app_id` and `key` in constant time (what WeChat's client
    /// does; the simulator uses it) (§5.5).
    pub fn verify(&self, app_id: &str, key: &ApiKey) -> Result<(), Error> {
        let expected = pay_sign(
            app_id,
            &self.time_stamp,
            &self.nonce_str,
            &self.package,
            self.sign_type,
            key,
        );
        if signs_equal(&expected, &self.pay_sign) {
            Ok(())
        } else {
            Err(Error::BadSignature)
        }
    }

    /// The `prepay_id` inside `package`, if the package has the expected shape.
    pub fn prepay_id(&self) -> Option<&str> {
        self.package.strip_prefix("prepay_id=")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    #[test]
    fn official_example_signs_with_both_algorithms() {
        let params = p(&[
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]);
        let key = ApiKey::new(KEY);
        assert_eq!(
            canonical_string(&params),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            sign(&params, &key, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        assert_eq!(
            sign(&params, &key, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn empty_values_and_sign_are_skipped_but_zero_is_kept() {
        let params = p(&[
            ("b", ""),
            ("a", "0"),
            ("sign", "X"),
            ("C", "1"),
            ("_x", "2"),
        ]);
        assert_eq!(canonical_string(&params), "C=1&_x=2&a=0");
    }

    #[test]
    fn verify_rejects_lowercase_and_other_algorithm() {
        let key = ApiKey::new(KEY);
        let mut params = p(&[("a", "1")]);
        let s = sign(&params, &key, SignType::Md5);
        params.insert("sign".into(), s.to_ascii_lowercase());
        assert!(matches!(
            verify(&params, &key, SignType::Md5),
            Err(Error::BadSignature)
        ));
        params.insert("sign".into(), s);
        assert!(verify(&params, &key, SignType::Md5).is_ok());
        assert!(matches!(
            verify(&params, &key, SignType::HmacSha256),
            Err(Error::BadSignature)
        ));
    }

    #[test]
    fn verify_requires_a_sign_and_refuses_a_key_field() {
        let key = ApiKey::new(KEY);
        let mut params = p(&[("a", "1")]);
        assert!(matches!(
            verify(&params, &key, SignType::Md5),
            Err(Error::MissingSign)
        ));
        params.insert("sign".into(), String::new());
        assert!(matches!(
            verify(&params, &key, SignType::Md5),
            Err(Error::MissingSign)
        ));
        params.insert("key".into(), "x".into());
        let s = sign(&params, &key, SignType::Md5);
        params.insert("sign".into(), s);
        assert!(matches!(
            verify(&params, &key, SignType::Md5),
            Err(Error::ReservedField { .. })
        ));
    }

    #[test]
    fn sign_type_parses_exactly() {
        assert_eq!("MD5".parse::<SignType>(), Ok(SignType::Md5));
        assert_eq!("HMAC-SHA256".parse::<SignType>(), Ok(SignType::HmacSha256));
        assert!("md5".parse::<SignType>().is_err());
        assert!("hmac-sha256".parse::<SignType>().is_err());
        assert!(" MD5".parse::<SignType>().is_err());
        assert_eq!(
            serde_json::to_string(&SignType::HmacSha256).unwrap(),
            "\"HMAC-SHA256\""
        );
        assert_eq!(
            serde_json::from_str::<SignType>("\"MD5\"").unwrap(),
            SignType::Md5
        );
        assert!(serde_json::from_str::<SignType>("\"Md5\"").is_err());
        assert_eq!(SignType::default(), SignType::Md5);
    }

    #[test]
    fn resolution_follows_the_notification_rule() {
        let mut params = p(&[("a", "1"), ("sign", &"A".repeat(64))]);
        assert_eq!(
            resolve_sign_type(&params, None).unwrap(),
            SignType::HmacSha256
        );
        params.insert("sign".into(), "A".repeat(32));
        assert_eq!(resolve_sign_type(&params, None).unwrap(), SignType::Md5);
        assert_eq!(
            resolve_sign_type(&params, Some(SignType::HmacSha256)).unwrap(),
            SignType::HmacSha256
        );
        params.insert("sign_type".into(), "MD5".into());
        assert!(matches!(
            resolve_sign_type(&params, Some(SignType::HmacSha256)),
            Err(Error::SignTypeDowngrade)
        ));
        params.insert("sign_type".into(), "HMAC-SHA256".into());
        assert_eq!(
            resolve_sign_type(&params, Some(SignType::Md5)).unwrap(),
            SignType::HmacSha256
        );
        params.insert("sign_type".into(), "md5".into());
        assert!(matches!(
            resolve_sign_type(&params, None),
            Err(Error::UnsupportedSignType { .. })
        ));
        params.insert("sign_type".into(), String::new());
        params.insert("sign".into(), "A".repeat(40));
        assert!(matches!(
            resolve_sign_type(&params, None),
            Err(Error::BadSignature)
        ));
    }

    #[test]
    fn api_key_from_file_trims_the_newline() {
        let path = std::env::temp_dir().join(format!("wxpay-key-{}", std::process::id()));
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        let key = ApiKey::from_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(key.expose(), KEY);
    }

    #[test]
    fn api_key_debug_is_redacted() {
        let key = ApiKey::new(KEY);
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        assert!(!format!("{key:?}").contains(KEY));
    }

    #[test]
    fn nonce_is_32_alphanumerics_and_varies() {
        let a = nonce_str();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, nonce_str());
    }

    #[test]
    fn jsapi_params_serialise_with_camel_case_and_verify() {
        let key = ApiKey::new("qazwsxedcrfvtgbyhnujmikolp111111");
        let pay = JsapiPayParams::with(
            "wxd678efh567hg6787",
            "wx2017033010242291fcfe0db70013231072",
            SignType::Md5,
            &key,
            1_490_840_662,
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS".into(),
        );
        assert_eq!(pay.pay_sign, "22D9B4E54AB1950F51E0649E8810ACD6");
        let json = serde_json::to_value(&pay).unwrap();
        for k in ["timeStamp", "nonceStr", "package", "signType", "paySign"] {
            assert!(json.get(k).is_some(), "{k} missing in {json}");
        }
        assert_eq!(json["signType"], "MD5");
        assert!(pay.verify("wxd678efh567hg6787", &key).is_ok());
        assert!(pay.verify("wxd678efh567hg6788", &key).is_err());
        assert_eq!(
            pay.prepay_id(),
            Some("wx2017033010242291fcfe0db70013231072")
        );
    }
}
