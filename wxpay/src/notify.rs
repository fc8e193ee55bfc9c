//! Notifications WeChat POSTs to the merchant (docs/wechatpay-v2.md §8.8 payment, §8.9 refund) and the exact
//! replies.
//!
//! Payment notifications are verified with the §5.2 rule (see [`crate::resolve_sign_type`]).
//! The two-step API lets the caller look up the order's stored sign type by `out_trade_no`
//! between parsing and verifying:
//!
//! ```
//! # use wxpay::{notify::ParsedPaymentNotification, ApiKey, SignType};
//! # let body = b"<xml><return_code>FAIL</return_code></xml>";
//! # let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
//! # let lookup = |_: &str| Some(SignType::HmacSha256);
//! match ParsedPaymentNotification::parse(body) {
//!     Ok(parsed) => {
//!         let order_sign_type = parsed.out_trade_no().and_then(lookup);
//!         let _verified = parsed.verify(&key, order_sign_type);
//!     }
//!     Err(e) => assert!(matches!(e, wxpay::Error::ReturnFail { .. })),
//! }
//! ```

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit};
use base64::Engine as _;
use md5::{Digest, Md5};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::api::{check_merchant, check_return_code, RefundStatus};
use crate::fields::{opt_compact_time, opt_display_time, opt_int, opt_string, req_int, req_string};
use crate::xml::{self, XmlError};
use crate::{sign, ApiKey, Error, Params, SignType};

/// The exact body acknowledging a notification (§8.8): HTTP 200 with this XML.
pub const REPLY_SUCCESS: &str =
    "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// The body asking WeChat to resend (§8.8): `return_code=FAIL` with a reason. The message is
/// wrapped in CDATA (escaped if it contains `]]>`).
pub fn reply_fail(msg: &str) -> String {
    let mut out = String::from("<xml><return_code><![CDATA[FAIL]]></return_code><return_msg>");
    if msg.is_empty() || msg.bytes().all(|b| b.is_ascii_digit()) {
        out.push_str("<![CDATA[");
        out.push_str(msg);
        out.push_str("]]>");
    } else {
        xml::write_value_to(&mut out, msg);
    }
    out.push_str("</return_msg></xml>");
    out
}

/// A payment notification that parsed strictly and has `return_code=SUCCESS`, not yet
/// verified (§8.8). Read [`Self::out_trade_no`] to find the order, then [`Self::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPaymentNotification {
    params: Params,
}

impl ParsedPaymentNotification {
    /// Parse strictly (§4.2) and check the envelope: [`Error::Xml`] for refused XML (see
    /// [`Error::is_forbidden_xml`]), [`Error::ReturnFail`] for `return_code=FAIL` (unsigned,
    /// never verified), [`Error::MissingField`] without `return_code`.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let params = xml::parse(body)?;
        check_return_code(&params)?;
        Ok(ParsedPaymentNotification { params })
    }

    /// `out_trade_no`, unverified: only for looking up the order.
    pub fn out_trade_no(&self) -> Option<&str> {
        self.params
            .get("out_trade_no")
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The `sign_type` field, if any (unverified).
    pub fn sign_type_field(&self) -> Option<&str> {
        self.params
            .get("sign_type")
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// All parameters (unverified).
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Verify with the §5.2 rule: `sign_type` field, else `order_sign_type` (the sign type
    /// stored with the order), else the length of `sign`; MD5 is never accepted for an
    /// HMAC-SHA256 order. Then read the typed fields (integers only after verification, §4.2
    /// rule 8).
    pub fn verify(
        self,
        key: &ApiKey,
        order_sign_type: Option<SignType>,
    ) -> Result<PaymentNotification, Error> {
        let sign_type = sign::verify_resolved(&self.params, key, order_sign_type)?;
        PaymentNotification::from_verified(self.params, sign_type)
    }
}

/// A verified payment notification (§8.8). `total_fee` must still be compared with the
/// order's amount and [`Self::check_merchant`] called with our appid / mch_id (§11.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotification {
    /// `appid`.
    pub appid: String,
    /// `mch_id`.
    pub mch_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `transaction_id` (present when paid).
    pub transaction_id: Option<String>,
    /// `total_fee` in fen: compare with the order.
    pub total_fee: i64,
    /// `cash_fee` in fen (may be lower with coupons).
    pub cash_fee: Option<i64>,
    /// `settlement_total_fee` in fen.
    pub settlement_total_fee: Option<i64>,
    /// `coupon_fee` in fen.
    pub coupon_fee: Option<i64>,
    /// `fee_type`.
    pub fee_type: Option<String>,
    /// `openid`.
    pub openid: Option<String>,
    /// `trade_type`.
    pub trade_type: Option<String>,
    /// `bank_type`.
    pub bank_type: Option<String>,
    /// `attach`.
    pub attach: Option<String>,
    /// `time_end` (UTC+8).
    pub time_end: Option<OffsetDateTime>,
    /// `result_code` (`SUCCESS` / `FAIL`).
    pub result_code: String,
    /// `err_code` when `result_code=FAIL`.
    pub err_code: Option<String>,
    /// `err_code_des` when `result_code=FAIL`.
    pub err_code_des: Option<String>,
    /// The algorithm the signature verified with.
    pub sign_type: SignType,
    /// All verified parameters, unknown ones included.
    pub params: Params,
}

impl PaymentNotification {
    /// Parse and verify in one step (§8.8, §5.2); see [`ParsedPaymentNotification`].
    pub fn parse_and_verify(
        body: &[u8],
        key: &ApiKey,
        order_sign_type: Option<SignType>,
    ) -> Result<Self, Error> {
        ParsedPaymentNotification::parse(body)?.verify(key, order_sign_type)
    }

    fn from_verified(params: Params, sign_type: SignType) -> Result<Self, Error> {
        Ok(PaymentNotification {
            appid: req_string(&params, "appid")?,
            mch_id: req_string(&params, "mch_id")?,
            out_trade_no: req_string(&params, "out_trade_no")?,
            transaction_id: opt_string(&params, "transaction_id"),
            total_fee: req_int(&params, "total_fee")?,
            cash_fee: opt_int(&params, "cash_fee")?,
            settlement_total_fee: opt_int(&params, "settlement_total_fee")?,
            coupon_fee: opt_int(&params, "coupon_fee")?,
            fee_type: opt_string(&params, "fee_type"),
            openid: opt_string(&params, "openid"),
            trade_type: opt_string(&params, "trade_type"),
            bank_type: opt_string(&params, "bank_type"),
            attach: opt_string(&params, "attach"),
            time_end: opt_compact_time(&params, "time_end")?,
            result_code: req_string(&params, "result_code")?,
            err_code: opt_string(&params, "err_code"),
            err_code_des: opt_string(&params, "err_code_des"),
            sign_type,
            params,
        })
    }

    /// `result_code == SUCCESS`: the payment succeeded (§8.8).
    pub fn is_paid(&self) -> bool {
        self.result_code == "SUCCESS"
    }

    /// `appid` and `mch_id` must be ours (§8.8 additional checks, §11.2 item 4).
    pub fn check_merchant(&self, appid: &str, mch_id: &str) -> Result<(), Error> {
        check_merchant(&self.params, appid, mch_id)
    }
}

/// The outer envelope of a refund notification (§8.9). It carries **no sign**: authenticity
/// rests on the encryption of `req_info`, which is weak (ECB, no MAC), so check the merchant
/// ids and match the decrypted refund against one we requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotification {
    /// `appid`.
    pub appid: String,
    /// `mch_id`.
    pub mch_id: String,
    /// `nonce_str`.
    pub nonce_str: Option<String>,
    /// The encrypted payload (base64).
    pub req_info: String,
    /// All outer parameters.
    pub params: Params,
}

impl RefundNotification {
    /// Parse the outer XML strictly (§4.2, §8.9): refused XML → [`Error::Xml`],
    /// `return_code=FAIL` → [`Error::ReturnFail`], no `req_info` → [`Error::MissingField`].
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let params = xml::parse(body)?;
        check_return_code(&params)?;
        Ok(RefundNotification {
            appid: req_string(&params, "appid")?,
            mch_id: req_string(&params, "mch_id")?,
            nonce_str: opt_string(&params, "nonce_str"),
            req_info: req_string(&params, "req_info")?,
            params,
        })
    }

    /// `appid` and `mch_id` must be ours (§8.9 security analysis).
    pub fn check_merchant(&self, appid: &str, mch_id: &str) -> Result<(), Error> {
        check_merchant(&self.params, appid, mch_id)
    }

    /// Decrypt `req_info` and read the refund (§8.9).
    pub fn decrypt(&self, key: &ApiKey) -> Result<RefundNotificationInfo, Error> {
        RefundNotificationInfo::from_params(decrypt_req_info(&self.req_info, key)?)
    }

    /// Parse, decrypt and read in one step (§8.9).
    pub fn parse_and_decrypt(
        body: &[u8],
        key: &ApiKey,
    ) -> Result<(Self, RefundNotificationInfo), Error> {
        let outer = Self::parse(body)?;
        let info = outer.decrypt(key)?;
        Ok((outer, info))
    }
}

/// The decrypted refund result (§8.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotificationInfo {
    /// `out_refund_no`: match it against a refund we requested.
    pub out_refund_no: String,
    /// WeChat's `refund_id`.
    pub refund_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `transaction_id`.
    pub transaction_id: String,
    /// `total_fee` in fen.
    pub total_fee: i64,
    /// `refund_fee` in fen: compare with the requested amount.
    pub refund_fee: i64,
    /// `settlement_total_fee` in fen.
    pub settlement_total_fee: Option<i64>,
    /// `settlement_refund_fee` in fen.
    pub settlement_refund_fee: Option<i64>,
    /// `refund_status`: `SUCCESS`, `CHANGE` or `REFUNDCLOSE`.
    pub refund_status: RefundStatus,
    /// `success_time` (UTC+8), only on success.
    pub success_time: Option<OffsetDateTime>,
    /// `refund_recv_accout` (sic), e.g. `支付用户零钱`.
    pub refund_recv_accout: Option<String>,
    /// `refund_account`.
    pub refund_account: Option<String>,
    /// `refund_request_source` (`API` / `VENDOR_PLATFORM`).
    pub refund_request_source: Option<String>,
    /// All decrypted parameters.
    pub params: Params,
}

impl RefundNotificationInfo {
    /// Read from decrypted parameters (§8.9).
    pub fn from_params(params: Params) -> Result<Self, Error> {
        Ok(RefundNotificationInfo {
            out_refund_no: req_string(&params, "out_refund_no")?,
            refund_id: req_string(&params, "refund_id")?,
            out_trade_no: req_string(&params, "out_trade_no")?,
            transaction_id: req_string(&params, "transaction_id")?,
            total_fee: req_int(&params, "total_fee")?,
            refund_fee: req_int(&params, "refund_fee")?,
            settlement_total_fee: opt_int(&params, "settlement_total_fee")?,
            settlement_refund_fee: opt_int(&params, "settlement_refund_fee")?,
            refund_status: RefundStatus::parse(crate::fields::req(&params, "refund_status")?),
            success_time: opt_display_time(&params, "success_time")?,
            refund_recv_accout: opt_string(&params, "refund_recv_accout"),
            refund_account: opt_string(&params, "refund_account"),
            refund_request_source: opt_string(&params, "refund_request_source"),
            params,
        })
    }
}

/// The AES-256 key for `req_info` (§8.9 step 2): the 32 ASCII characters of the lowercase hex
/// MD5 of the API key — not the 16 raw digest bytes.
pub fn refund_aes_key(key: &ApiKey) -> Zeroizing<[u8; 32]> {
    let hex = Zeroizing::new(hex::encode(Md5::digest(key.expose().as_bytes())));
    let mut out = Zeroizing::new([0_u8; 32]);
    out.copy_from_slice(hex.as_bytes());
    out
}

fn decrypt_failed(reason: impl Into<String>) -> Error {
    Error::DecryptFailed {
        reason: reason.into(),
    }
}

/// Decrypt a refund notification's `req_info` (§8.9): base64 → AES-256-ECB with
/// [`refund_aes_key`] → PKCS#7 unpadding → strict XML with root `<root>`.
///
/// Any failure is [`Error::DecryptFailed`] (wrong key, bad base64, bad padding, a plaintext
/// that is not the expected XML), except forbidden XML inside the plaintext, which stays
/// [`Error::Xml`] so it is recorded as such.
pub fn decrypt_req_info(req_info_b64: &str, key: &ApiKey) -> Result<Params, Error> {
    let compact: String = req_info_b64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let ciphertext = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| decrypt_failed(format!("req_info is not base64: {e}")))?;
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return Err(decrypt_failed(format!(
            "ciphertext length {} is not a positive multiple of 16",
            ciphertext.len()
        )));
    }
    let aes_key = refund_aes_key(key);
    let cipher = ecb::Decryptor::<aes::Aes256>::new_from_slice(aes_key.as_slice())
        .map_err(|_| decrypt_failed("invalid AES key length"))?;
    let plaintext = Zeroizing::new(
        cipher
            .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
            .map_err(|_| decrypt_failed("bad PKCS#7 padding (wrong API key?)"))?,
    );
    match xml::parse_with_root(&plaintext, xml::REFUND_ROOT) {
        Ok(params) => Ok(params),
        Err(e @ XmlError::Forbidden { .. }) => Err(Error::Xml(e)),
        Err(e) => Err(decrypt_failed(format!(
            "plaintext is not the expected <root> XML: {e}"
        ))),
    }
}

/// Encrypt raw plaintext bytes into a `req_info` value (§8.9; for the simulator and tests).
pub fn encrypt_req_info_bytes(plaintext: &[u8], key: &ApiKey) -> String {
    let aes_key = refund_aes_key(key);
    let ciphertext = ecb::Encryptor::<aes::Aes256>::new(aes_key.as_slice().into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    base64::engine::general_purpose::STANDARD.encode(ciphertext)
}

/// Write `params` as `<root>` XML and encrypt it into a `req_info` value (§8.9; the simulator
/// needs it).
pub fn encrypt_req_info(params: &Params, key: &ApiKey) -> String {
    encrypt_req_info_bytes(
        xml::write_with_root(params, xml::REFUND_ROOT).as_bytes(),
        key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_exact() {
        assert_eq!(
            REPLY_SUCCESS,
            "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
        );
        assert_eq!(
            reply_fail("签名失败"),
            "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[签名失败]]></return_msg></xml>"
        );
        let tricky = reply_fail("a]]>b");
        let parsed = xml::parse(tricky.as_bytes()).unwrap();
        assert_eq!(parsed["return_msg"], "a]]>b");
        assert_eq!(parsed["return_code"], "FAIL");
    }

    #[test]
    fn req_info_round_trips_and_wrong_key_fails() {
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let params: Params = [("out_refund_no", "r1"), ("refund_status", "SUCCESS")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let enc = encrypt_req_info(&params, &key);
        assert_eq!(decrypt_req_info(&enc, &key).unwrap(), params);
        let other = ApiKey::new("292006250b4c09247ec02edce69f6a2d");
        assert!(matches!(
            decrypt_req_info(&enc, &other),
            Err(Error::DecryptFailed { .. })
        ));
        assert!(matches!(
            decrypt_req_info("***", &key),
            Err(Error::DecryptFailed { .. })
        ));
        assert!(matches!(
            decrypt_req_info("AAAA", &key),
            Err(Error::DecryptFailed { .. })
        ));
        let evil = encrypt_req_info_bytes(b"<!DOCTYPE r><root></root>", &key);
        assert!(decrypt_req_info(&evil, &key)
            .unwrap_err()
            .is_forbidden_xml());
    }
}

#[cfg(test)]
mod payment_tests {
    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn notification(t: SignType, with_field: bool) -> Vec<u8> {
        let mut p: Params = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("appid", "wx1"),
            ("mch_id", "100"),
            ("out_trade_no", "A1"),
            ("transaction_id", "4200"),
            ("total_fee", "100"),
            ("time_end", "20240101120000"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        if with_field {
            p.insert("sign_type".into(), t.as_str().into());
        }
        let s = sign::sign(&p, &ApiKey::new(KEY), t);
        p.insert("sign".into(), s);
        xml::write(&p).into_bytes()
    }

    #[test]
    fn hmac_notification_without_sign_type_verifies_with_the_order_type() {
        let key = ApiKey::new(KEY);
        let body = notification(SignType::HmacSha256, false);
        for order in [None, Some(SignType::HmacSha256)] {
            let n = PaymentNotification::parse_and_verify(&body, &key, order).unwrap();
            assert_eq!(n.sign_type, SignType::HmacSha256);
            assert_eq!(n.total_fee, 100);
            assert!(n.is_paid());
            assert!(n.check_merchant("wx1", "100").is_ok());
            assert!(n.check_merchant("wx2", "100").is_err());
        }
        assert!(matches!(
            PaymentNotification::parse_and_verify(&body, &key, Some(SignType::Md5)),
            Err(Error::BadSignature)
        ));
    }

    #[test]
    fn md5_is_never_accepted_for_an_hmac_order() {
        let key = ApiKey::new(KEY);
        for with_field in [false, true] {
            let body = notification(SignType::Md5, with_field);
            assert!(PaymentNotification::parse_and_verify(&body, &key, None).is_ok());
            let err =
                PaymentNotification::parse_and_verify(&body, &key, Some(SignType::HmacSha256))
                    .unwrap_err();
            assert!(err.is_signature_error(), "{err:?}");
        }
    }

    #[test]
    fn two_step_api_and_error_classes() {
        let key = ApiKey::new(KEY);
        let parsed = ParsedPaymentNotification::parse(&notification(SignType::Md5, false)).unwrap();
        assert_eq!(parsed.out_trade_no(), Some("A1"));
        assert!(parsed.verify(&key, Some(SignType::Md5)).is_ok());
        let forbidden =
            PaymentNotification::parse_and_verify(b"<!DOCTYPE x><xml/>", &key, None).unwrap_err();
        assert!(forbidden.is_forbidden_xml());
        let malformed = PaymentNotification::parse_and_verify(b"<xml><a>", &key, None).unwrap_err();
        assert!(matches!(malformed, Error::Xml(ref e) if !e.is_forbidden()));
        let unsigned = PaymentNotification::parse_and_verify(
            b"<xml><return_code>SUCCESS</return_code><out_trade_no>A1</out_trade_no></xml>",
            &key,
            None,
        );
        assert!(matches!(unsigned, Err(Error::MissingSign)));
        let fail = PaymentNotification::parse_and_verify(
            b"<xml><return_code>FAIL</return_code></xml>",
            &key,
            None,
        );
        assert!(matches!(fail, Err(Error::ReturnFail { .. })));
    }
}
