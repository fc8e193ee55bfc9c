//! `GET /sns/jscode2session` (docs/wechatpay-v2.md §8.10): JSON, codes map deterministically to openids (or
//! to a mapping registered through the control API), each code works once.
//!
//! Special codes for negative tests: a code starting with `busy` answers `-1` (retry),
//! `ratelimit` → `45011`, `risky` → `40226`, `invalid` → `40029`.

use std::collections::HashMap;

use base64::Engine as _;
use md5::{Digest, Md5};
use rand::RngCore;
use serde_json::{json, Value};

use crate::Sim;

/// The openid a code logs in as when no mapping was registered: 28 characters starting
/// with `o`, derived from the appid and the code.
pub fn default_openid(appid: &str, code: &str) -> String {
    let mut bytes = Md5::digest(format!("{appid}:{code}").as_bytes()).to_vec();
    bytes.extend(Md5::digest(format!("{code}:{appid}").as_bytes()));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("o{}", &b64[..b64.len().min(27)])
}

fn error(errcode: i64, errmsg: &str) -> Value {
    json!({ "errcode": errcode, "errmsg": errmsg })
}

pub(crate) fn jscode2session(sim: &Sim, q: &HashMap<String, String>) -> Value {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("appid") != sim.config.appid {
        return error(40013, "invalid appid");
    }
    if get("secret") != sim.config.app_secret.expose() {
        return error(40125, "invalid appsecret");
    }
    if get("grant_type") != "authorization_code" {
        return error(40002, "invalid grant_type");
    }
    let code = get("js_code");
    if code.is_empty() {
        return error(41008, "missing code");
    }
    if code.starts_with("busy") {
        return error(-1, "system error");
    }
    if code.starts_with("ratelimit") {
        return error(
            45011,
            "api minute-quota reach limit  mustslower  retry next minute",
        );
    }
    if code.starts_with("risky") {
        return error(40226, "invalid code, high risk user");
    }
    if code.starts_with("invalid") {
        return error(40029, "invalid code");
    }
    let mut store = sim.store();
    if !store.used_codes.insert(code.to_owned()) {
        return error(40029, "invalid code");
    }
    let mapping = store.codes.get(code).cloned();
    drop(store);
    let openid = mapping.as_ref().map_or_else(
        || default_openid(&sim.config.appid, code),
        |m| m.openid.clone(),
    );
    let mut key = [0_u8; 16];
    rand::thread_rng().fill_bytes(&mut key);
    let session_key = base64::engine::general_purpose::STANDARD.encode(key);
    let mut body = json!({ "openid": openid, "session_key": session_key });
    if let Some(unionid) = mapping.and_then(|m| m.unionid) {
        body["unionid"] = Value::String(unionid);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_openids_are_deterministic_and_shaped_like_wechat_ones() {
        let a = default_openid("wx1", "code-1");
        assert_eq!(a, default_openid("wx1", "code-1"));
        assert_ne!(a, default_openid("wx1", "code-2"));
        assert_eq!(a.len(), 28);
        assert!(a.starts_with('o'));
    }
}
