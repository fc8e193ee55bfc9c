//! What WeChat Pay accepts as a `notify_url` (docs/wechatpay-v2.md §8.1, §8.5): an absolute
//! `https://` URL that its servers can reach from the internet, at most 256 characters,
//! without a query string ("不能携带参数"). paydesk checks its own URLs with this before it
//! starts in merchant mode, `paydesk doctor` reports it, and the simulator refuses what fails
//! it, as the real service does.
//!
//! Host names are not resolved (that would make the answer depend on where and when it is
//! asked): only a literal address is judged, plus `localhost`, which names loopback by
//! definition (RFC 6761).
//!
//! [`NotifyUrlRules::Loopback`] is the explicit relaxation for a setup whose WeChat Pay is a
//! simulator on the same machine (the sandbox, tests, benchmarks, a local cluster): plain
//! `http://` and loopback or private addresses pass; the length and the query-string rule
//! still hold.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The longest `notify_url` WeChat Pay takes (`String(256)`).
pub const MAX_NOTIFY_URL_LEN: usize = 256;

/// Which URLs pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyUrlRules {
    /// What WeChat Pay itself accepts and can reach: public `https://` only.
    Public,
    /// A simulator on this machine: `http://` and loopback/private addresses allowed too.
    Loopback,
}

impl NotifyUrlRules {
    /// [`Loopback`](Self::Loopback) when a setting allows insecure URLs, else
    /// [`Public`](Self::Public).
    pub fn allowing_insecure(allow: bool) -> Self {
        if allow {
            NotifyUrlRules::Loopback
        } else {
            NotifyUrlRules::Public
        }
    }
}

/// Why a `notify_url` would not work with WeChat Pay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyUrlError {
    /// Not set, or blank.
    #[error("is empty")]
    Empty,
    /// Longer than [`MAX_NOTIFY_URL_LEN`].
    #[error("is {0} characters long; WeChat Pay takes at most {MAX_NOTIFY_URL_LEN}")]
    TooLong(usize),
    /// Contains white space or a control character.
    #[error("contains white space or control characters")]
    Whitespace,
    /// Not `https://…` (or, relaxed, `http://…`).
    #[error("must be an absolute https:// URL")]
    NotHttps,
    /// `user:password@` before the host.
    #[error("must not carry a user name or password")]
    Credentials,
    /// No host, or a malformed port or IPv6 literal.
    #[error("has no valid host")]
    NoHost,
    /// Has `?…` or `#…`: WeChat Pay does not take parameters in the notify URL.
    #[error("must not have a query string or fragment (WeChat Pay refuses parameters)")]
    Query,
    /// A loopback, private, link-local or otherwise non-public address (or `localhost`).
    #[error("points at {0}, which WeChat Pay cannot reach")]
    NotPublic(String),
}

/// Checks `url` against `rules`.
pub fn check_notify_url(url: &str, rules: NotifyUrlRules) -> Result<(), NotifyUrlError> {
    if url.trim().is_empty() {
        return Err(NotifyUrlError::Empty);
    }
    let len = url.chars().count();
    if len > MAX_NOTIFY_URL_LEN {
        return Err(NotifyUrlError::TooLong(len));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NotifyUrlError::Whitespace);
    }
    let rest = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => rest,
        (None, Some(rest)) if rules == NotifyUrlRules::Loopback => rest,
        _ => return Err(NotifyUrlError::NotHttps),
    };
    if rest.contains(['?', '#']) {
        return Err(NotifyUrlError::Query);
    }
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(NotifyUrlError::Credentials);
    }
    let host = host_of(authority).ok_or(NotifyUrlError::NoHost)?;
    if rules == NotifyUrlRules::Public {
        if host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost")
        {
            return Err(NotifyUrlError::NotPublic(host.to_owned()));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !is_public(ip) {
                return Err(NotifyUrlError::NotPublic(ip.to_string()));
            }
        }
    }
    Ok(())
}

/// The host of `host[:port]` or `[v6][:port]` (brackets removed), if well formed.
fn host_of(authority: &str) -> Option<&str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']')?;
        v6[..end].parse::<Ipv6Addr>().ok()?;
        let after = &v6[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (&v6[..end], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        port.parse::<u16>().ok().filter(|p| *p != 0)?;
    }
    let name_ok = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    (authority.starts_with('[') || name_ok(host)).then_some(host)
}

/// Whether WeChat Pay's servers could reach `ip` over the internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                    || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                    || (first == 0x2001 && v6.segments()[1] == 0x0db8)) // documentation
            }
        },
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved
}

#[cfg(test)]
mod tests {
    use super::*;
    use NotifyUrlRules::{Loopback, Public};

    #[test]
    fn public_https_urls_pass() {
        for url in [
            "https://pay.example.com/wxpay/notify/payment",
            "https://pay.example.com:8443/wxpay/notify/payment",
            "https://203.0.113.7.nip.io/n",
            "https://8.8.8.8/wxpay/notify",
            "https://[2400:3200::1]:443/n",
            "https://pay.example.com",
        ] {
            assert_eq!(check_notify_url(url, Public), Ok(()), "{url}");
        }
    }

    #[test]
    fn what_wechat_pay_refuses_or_cannot_reach_is_named() {
        let long = format!("https://pay.example.com/{}", "a".repeat(240));
        for (url, want) in [
            ("", NotifyUrlError::Empty),
            (long.as_str(), NotifyUrlError::TooLong(264)),
            ("https://pay.example.com/a b", NotifyUrlError::Whitespace),
            ("http://pay.example.com/n", NotifyUrlError::NotHttps),
            ("HTTPS://pay.example.com/n", NotifyUrlError::NotHttps),
            ("/wxpay/notify/payment", NotifyUrlError::NotHttps),
            ("ftp://pay.example.com/n", NotifyUrlError::NotHttps),
            ("https://pay.example.com/n?shop=1", NotifyUrlError::Query),
            ("https://pay.example.com/n#x", NotifyUrlError::Query),
            ("https://u:p@pay.example.com/n", NotifyUrlError::Credentials),
            ("https:///n", NotifyUrlError::NoHost),
            ("https://pay.example.com:99999/n", NotifyUrlError::NoHost),
            ("https://pay.example.com:/n", NotifyUrlError::NoHost),
            ("https://[::1/n", NotifyUrlError::NoHost),
            (
                "https://127.0.0.1/n",
                NotifyUrlError::NotPublic("127.0.0.1".into()),
            ),
            (
                "https://10.1.2.3/n",
                NotifyUrlError::NotPublic("10.1.2.3".into()),
            ),
            (
                "https://172.20.0.1/n",
                NotifyUrlError::NotPublic("172.20.0.1".into()),
            ),
            (
                "https://192.168.1.10:8443/n",
                NotifyUrlError::NotPublic("192.168.1.10".into()),
            ),
            (
                "https://169.254.1.1/n",
                NotifyUrlError::NotPublic("169.254.1.1".into()),
            ),
            (
                "https://100.64.0.1/n",
                NotifyUrlError::NotPublic("100.64.0.1".into()),
            ),
            (
                "https://0.0.0.0/n",
                NotifyUrlError::NotPublic("0.0.0.0".into()),
            ),
            ("https://[::1]/n", NotifyUrlError::NotPublic("::1".into())),
            (
                "https://[fd00::5]/n",
                NotifyUrlError::NotPublic("fd00::5".into()),
            ),
            (
                "https://[fe80::1]/n",
                NotifyUrlError::NotPublic("fe80::1".into()),
            ),
            (
                "https://[::ffff:10.0.0.1]/n",
                NotifyUrlError::NotPublic("::ffff:10.0.0.1".into()),
            ),
            (
                "https://localhost/n",
                NotifyUrlError::NotPublic("localhost".into()),
            ),
            (
                "https://shop.localhost/n",
                NotifyUrlError::NotPublic("shop.localhost".into()),
            ),
        ] {
            assert_eq!(check_notify_url(url, Public), Err(want), "{url:?}");
        }
    }

    #[test]
    fn the_loopback_relaxation_allows_http_and_local_addresses_but_not_parameters() {
        for url in [
            "http://127.0.0.1:8080/wxpay/notify/payment",
            "http://localhost:3000/n",
            "https://10.0.0.2/n",
            "http://[::1]:9000/n",
        ] {
            assert_eq!(check_notify_url(url, Loopback), Ok(()), "{url}");
        }
        assert_eq!(
            check_notify_url("http://127.0.0.1:8080/n?x=1", Loopback),
            Err(NotifyUrlError::Query)
        );
        assert_eq!(
            check_notify_url("ftp://127.0.0.1/n", Loopback),
            Err(NotifyUrlError::NotHttps)
        );
    }
}
