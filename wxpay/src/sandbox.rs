//! WeChat Pay's sandbox ("仿真测试系统", docs/wechatpay-v2.md §2.1, §3, §8.11): a base URL that
//! ends with a sandbox prefix, and the `getsignkey` call that gives the sandbox's own key.
//!
//! In the sandbox the merchant's API key signs exactly one request: `getsignkey` (MD5,
//! §8.11). Its answer, `sandbox_signkey`, replaces the API key for **every** other sandbox
//! signature: requests, responses, payment notifications, the refund notification's
//! `req_info` and `paySign` (§3, wechatpy uses it for all of them). The sandbox is MD5 only
//! (§5.2).
//!
//! How SDKs hold it: WxJava and easywechat fetch it lazily before the first sandbox call and
//! cache it (easywechat for 24 h); a few NestJS modules fetch it once at start. The
//! [`crate::Client`] fetches it once, lazily, and keeps it for its lifetime: the sandbox key is
//! fixed per merchant, and every holder of the key (the server's notification check, the
//! `paySign`) must see the same one, which a silent re-fetch would break. A `签名错误` from
//! the sandbox is returned as it is.

use crate::{xml, ApiKey, Error, Params};

/// The sandbox prefixes a base URL can end with (§2.1): the legacy one and the newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxPrefix {
    /// `/sandboxnew` (legacy "仿真测试系统"; getsignkey at `/sandboxnew/pay/getsignkey`).
    Legacy,
    /// `/xdc/apiv2sandbox` (newer; getsignkey at `/xdc/apiv2getsignkey/sign/getsignkey`).
    Xdc,
}

impl SandboxPrefix {
    /// The path prefix itself.
    pub const fn as_str(self) -> &'static str {
        match self {
            SandboxPrefix::Legacy => "/sandboxnew",
            SandboxPrefix::Xdc => "/xdc/apiv2sandbox",
        }
    }

    /// The sandbox prefix `base_url` ends with, if any (a trailing `/` is ignored).
    pub fn of(base_url: &str) -> Option<SandboxPrefix> {
        let base = base_url.trim_end_matches('/');
        [SandboxPrefix::Legacy, SandboxPrefix::Xdc]
            .into_iter()
            .find(|p| base.ends_with(p.as_str()))
    }

    /// The getsignkey URL for a base URL with this prefix (§2.2, §8.11): the legacy sandbox
    /// serves it under its own prefix, the newer one beside it on the same host.
    pub fn sign_key_url(self, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        match self {
            SandboxPrefix::Legacy => format!("{base}/pay/getsignkey"),
            SandboxPrefix::Xdc => {
                let host = base.strip_suffix(self.as_str()).unwrap_or(base);
                format!("{host}/xdc/apiv2getsignkey/sign/getsignkey")
            }
        }
    }
}

/// The endpoint name getsignkey is recorded under (the path of the legacy sandbox).
pub const SIGN_KEY_ENDPOINT: &str = "/pay/getsignkey";

/// Read a getsignkey answer (§8.11): `return_code=FAIL` (or the sandbox's `retcode`/`retmsg`
/// variant) → [`Error::ReturnFail`]; otherwise `sandbox_signkey` must be there, and `mch_id`,
/// when the answer carries one, must be ours. The answer is not signed (which key would
/// sign it?): TLS to WeChat's host is what vouches for it.
pub fn parse_sign_key_answer(body: &[u8], mch_id: &str) -> Result<ApiKey, Error> {
    let params = crate::api::parse_response_xml(SIGN_KEY_ENDPOINT, body)?;
    let code = params.get("return_code").or_else(|| params.get("retcode"));
    if code.map(String::as_str) != Some("SUCCESS") {
        let msg = params
            .get("return_msg")
            .or_else(|| params.get("retmsg"))
            .cloned()
            .unwrap_or_default();
        return Err(Error::ReturnFail { return_msg: msg });
    }
    if let Some(theirs) = params.get("mch_id").filter(|v| !v.is_empty()) {
        if theirs != mch_id {
            return Err(Error::MchIdMismatch {
                expected: mch_id.to_owned(),
                found: theirs.clone(),
            });
        }
    }
    match params.get("sandbox_signkey").filter(|v| !v.is_empty()) {
        Some(key) => Ok(ApiKey::new(key.as_str())),
        None => Err(Error::MissingField {
            field: "sandbox_signkey".into(),
        }),
    }
}

/// A getsignkey answer as it may be recorded: `sandbox_signkey` replaced by `[redacted]`
/// (the key is never stored or logged, §11.2 item 9); anything unparsable that mentions it
/// is withheld whole.
pub fn redact_sign_key_answer(body: &[u8]) -> String {
    match xml::parse(body) {
        Ok(mut params) => {
            if let Some(v) = params.get_mut("sandbox_signkey") {
                *v = "[redacted]".into();
            }
            xml::write(&params)
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            if text.contains("sandbox_signkey") {
                "[unparsable body containing sandbox_signkey withheld]".into()
            } else {
                text.into_owned()
            }
        }
    }
}

/// The getsignkey request's parameters (§8.11): `mch_id` and `nonce_str`, signed MD5 with
/// the merchant's production API key — no `appid`, no `sign_type`.
pub fn sign_key_request(mch_id: &str, api_key: &ApiKey) -> Params {
    let mut params = Params::from([
        ("mch_id".to_owned(), mch_id.to_owned()),
        ("nonce_str".to_owned(), crate::nonce_str()),
    ]);
    let sign = crate::sign(&params, api_key, crate::SignType::Md5);
    params.insert("sign".into(), sign);
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_prefixes_are_recognised_at_the_end_of_the_base_only() {
        assert_eq!(
            SandboxPrefix::of("https://api.mch.weixin.qq.com/sandboxnew/"),
            Some(SandboxPrefix::Legacy)
        );
        assert_eq!(
            SandboxPrefix::of("http://127.0.0.1:9/xdc/apiv2sandbox"),
            Some(SandboxPrefix::Xdc)
        );
        assert_eq!(SandboxPrefix::of("https://api.mch.weixin.qq.com"), None);
        assert_eq!(SandboxPrefix::of("https://sandboxnew.example/pay"), None);
    }

    #[test]
    fn each_sandbox_has_its_own_getsignkey_url() {
        assert_eq!(
            SandboxPrefix::Legacy.sign_key_url("https://api.mch.weixin.qq.com/sandboxnew"),
            "https://api.mch.weixin.qq.com/sandboxnew/pay/getsignkey"
        );
        assert_eq!(
            SandboxPrefix::Xdc.sign_key_url("https://api.mch.weixin.qq.com/xdc/apiv2sandbox/"),
            "https://api.mch.weixin.qq.com/xdc/apiv2getsignkey/sign/getsignkey"
        );
    }

    #[test]
    fn a_sign_key_answer_gives_the_key_and_is_recorded_without_it() {
        let body = b"<xml><return_code>SUCCESS</return_code><return_msg>ok</return_msg><mch_id>10000100</mch_id><sandbox_signkey>bd1c50c287f1f5d4c9bd602c4fba6f8a</sandbox_signkey></xml>";
        let key = parse_sign_key_answer(body, "10000100").unwrap();
        assert_eq!(key.expose(), "bd1c50c287f1f5d4c9bd602c4fba6f8a");
        let recorded = redact_sign_key_answer(body);
        assert!(!recorded.contains("bd1c50c2"), "{recorded}");
        assert!(recorded.contains("[redacted]"), "{recorded}");
        assert!(matches!(
            parse_sign_key_answer(body, "10000200"),
            Err(Error::MchIdMismatch { .. })
        ));
        let refused = b"<xml><retcode>FAIL</retcode><retmsg>sign error</retmsg></xml>";
        assert!(matches!(
            parse_sign_key_answer(refused, "10000100"),
            Err(Error::ReturnFail { return_msg }) if return_msg == "sign error"
        ));
    }
}
