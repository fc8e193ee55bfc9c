//! The client's address, behind reverse proxies too.
//!
//! Behind nginx (or any proxy) every request comes from the proxy's address. Sign-in
//! throttling counts failures per address, so twenty typos anywhere would lock every
//! member of staff out for a quarter of an hour, and the audit log and `spbill_create_ip`
//! would name the proxy. With `PAYDESK_TRUSTED_PROXIES` set, a request whose TCP peer is one
//! of those proxies is taken to come from the address the proxies put in
//! `X-Forwarded-For`: read from the right (each proxy appends the address it saw), the
//! first one that is not itself a trusted proxy. A request from anywhere else keeps its TCP
//! peer, whatever headers it carries, so nobody can claim another address by sending the
//! header themselves.
//!
//! [`resolve`] puts the result on every dashboard and mini-program request as a
//! [`ClientIp`] extension.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use app::server::ssr::ClientIp;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// The proxies whose `X-Forwarded-For` is believed: addresses and CIDR ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// (network as an IPv6 number, prefix length out of 128); IPv4 is held IPv4-mapped.
    nets: Vec<(u128, u32)>,
}

/// An address as an IPv6 number (IPv4 mapped), so one comparison serves both.
fn to_bits(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(prefix: u32) -> u128 {
    match prefix {
        0 => 0,
        p => u128::MAX << (128 - p),
    }
}

impl TrustedProxies {
    /// Parses a comma-separated list such as `127.0.0.1, 10.0.0.0/8, ::1`; empty means none.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, prefix) = match item.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (item, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or CIDR range"))?;
            let (bits, max, offset) = match ip.to_canonical() {
                IpAddr::V4(_) => (to_bits(ip), 32, 96),
                IpAddr::V6(_) => (to_bits(ip), 128, 0),
            };
            let prefix = match prefix {
                None => max,
                Some(p) => p
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("{item:?}: the prefix length must be 0 to {max}"))?,
            };
            let prefix = prefix + offset;
            nets.push((bits & mask(prefix), prefix));
        }
        Ok(TrustedProxies { nets })
    }

    /// Whether no proxy is trusted (the TCP peer is always the client).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = to_bits(ip);
        self.nets
            .iter()
            .any(|&(net, prefix)| bits & mask(prefix) == net)
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.forwarded(peer, headers)
            .unwrap_or_else(|| peer.to_canonical())
    }

    /// For a request from a trusted proxy, the address it forwarded (the proxy's own when
    /// it forwarded none); `None` when `peer` is not a trusted proxy.
    pub fn forwarded(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return None;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|value| value.to_str().unwrap_or("?").rsplit(','));
        for hop in hops {
            // Something unreadable: stop at the last proxy we trust rather than guess.
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip.to_canonical();
            if !self.contains(client) {
                break;
            }
        }
        Some(client)
    }
}

/// Middleware: puts the request's [`ClientIp`] on it.
pub async fn resolve(
    State(trusted): State<Arc<TrustedProxies>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = trusted.client(peer.ip(), request.headers());
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_ranges_of_both_families_are_matched() {
        let t = TrustedProxies::parse(" 127.0.0.1, 10.0.0.0/8,fd00::/8 ,::1").unwrap();
        for yes in ["127.0.0.1", "10.1.2.3", "fd12::1", "::1", "::ffff:10.9.9.9"] {
            assert!(t.contains(ip(yes)), "{yes}");
        }
        for no in ["127.0.0.2", "11.0.0.1", "fe80::1", "192.168.1.1"] {
            assert!(!t.contains(ip(no)), "{no}");
        }
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        for bad in ["localhost", "10.0.0.0/33", "::1/129", "1.2.3.4/x"] {
            let err = TrustedProxies::parse(bad).unwrap_err();
            assert!(err.contains(bad.split('/').next().unwrap()), "{bad}: {err}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy() {
        let t = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let proxy = ip("127.0.0.1");
        // Through one proxy
        assert_eq!(
            t.client(proxy, &headers(&["203.0.113.5"])),
            ip("203.0.113.5")
        );
        // Through a chain, with a forged entry on the left that is not believed
        assert_eq!(
            t.client(proxy, &headers(&["1.1.1.1, 203.0.113.5, 10.0.0.7"])),
            ip("203.0.113.5")
        );
        // The same chain split over two headers
        assert_eq!(
            t.client(proxy, &headers(&["1.1.1.1, 203.0.113.5", "10.0.0.7"])),
            ip("203.0.113.5")
        );
        // No header, or garbage: the last trusted hop
        assert_eq!(t.client(proxy, &HeaderMap::new()), proxy);
        assert_eq!(
            t.client(proxy, &headers(&["nonsense, 10.0.0.7"])),
            ip("10.0.0.7")
        );
        // An untrusted peer's header is ignored
        assert_eq!(
            t.client(ip("198.51.100.9"), &headers(&["203.0.113.5"])),
            ip("198.51.100.9")
        );
        // Nothing trusted: always the peer
        assert_eq!(
            TrustedProxies::default().client(proxy, &headers(&["203.0.113.5"])),
            proxy
        );
    }
}
