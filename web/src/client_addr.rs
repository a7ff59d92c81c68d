//! The visitor's address, for the click API's per-source budget: the TCP peer,
//! unless that peer is one of the trusted reverse proxies (`[web]
//! trusted_proxies`, CIDRs). Only then is `X-Forwarded-For` (or, without it,
//! `Forwarded: for=`) read, from the right: the first hop that is not itself a
//! trusted proxy is the visitor. Anybody else's header is ignored, so a header
//! sent from outside buys no fresh budget; a hop that is not an address stops
//! the walk at the proxy that wrote it.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Hops read from the right at most (a proxy chain is short; the rest is junk).
const MAX_HOPS: usize = 16;

/// Why a CIDR was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a CIDR network (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)")]
pub struct BadCidr(String);

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is its own /32 or /128.
pub fn parse_network(text: &str) -> Result<IpNet, BadCidr> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| BadCidr(text.to_owned()))
}

/// The reverse proxies whose forwarding headers are believed (none by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// These networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Whether `ip` is in one of the networks (an IPv4-mapped IPv6 address counts as IPv4).
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The visitor's address behind TCP peer `peer` (see the module comment).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_hops(headers);
        let mut client = peer;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            let Some(ip) = hop_address(hop) else {
                return client;
            };
            client = ip.to_canonical();
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// The hops a request names, left (farthest) to right: `X-Forwarded-For` when
/// there is one, else the `for=` of each `Forwarded` element.
fn forwarded_hops(headers: &HeaderMap) -> Vec<String> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|hop| hop.trim().to_owned())
            .collect::<Vec<_>>()
    };
    let xff = values("x-forwarded-for");
    if !xff.is_empty() {
        return xff;
    }
    values("forwarded")
        .iter()
        .map(|element| {
            element
                .split(';')
                .find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.eq_ignore_ascii_case("for")
                        .then(|| value.trim_matches('"').to_owned())
                })
                // An element without `for=` is a hop we cannot read.
                .unwrap_or_default()
        })
        .collect()
}

/// The address of one hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn hop_address(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (address, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(IpNet::to_string))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| parse_network(text).map_err(serde::de::Error::custom))
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|c| parse_network(c).unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let p = proxies(&["10.0.0.0/8"]);
        assert!(p.trusts(ip("10.200.1.2")));
        assert!(p.trusts(ip("::ffff:10.1.1.1")), "IPv4-mapped");
        assert!(!p.trusts(ip("11.0.0.1")));
        assert!(proxies(&["0.0.0.0/0"]).trusts(ip("8.8.8.8")));
        let one = proxies(&[" 192.0.2.7 "]);
        assert!(one.trusts(ip("192.0.2.7")) && !one.trusts(ip("192.0.2.8")));
        let v6 = proxies(&["fd00::/8"]);
        assert!(v6.trusts(ip("fd12::1")) && !v6.trusts(ip("fe80::1")));
        for bad in ["10.0.0.0/33", "10.0.0/8", "", "fd00::/129", "x/1", "10.0.0.0/-1"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=198.51.100.2"),
        ]);
        assert_eq!(p.client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "2001:db8::/32"]);
        // The visitor forged the left-most entry; the proxies appended the rest.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4, 198.51.100.7"),
            ("x-forwarded-for", "10.1.1.1"),
        ]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5555, [2001:db8::5]:80")]);
        assert_eq!(p.client(ip("::ffff:10.0.0.2"), &h), ip("198.51.100.7"));
        let h = headers(&[(
            "forwarded",
            "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=192.0.2.60",
        )]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("192.0.2.60"));
        // No header: the proxy itself; junk: the proxy that wrote it.
        assert_eq!(p.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7, unknown")]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        let h = headers(&[("forwarded", "for=_hidden, for=10.3.3.3")]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("10.3.3.3"));
    }

    #[test]
    fn the_config_form_is_a_list_of_cidrs() {
        let p: TrustedProxies = serde_json::from_str(r#"["10.0.0.0/8", "::1"]"#).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"["10.0.0.0/8","::1/128"]"#);
        let err = serde_json::from_str::<TrustedProxies>(r#"["10.0.0.0/40"]"#).unwrap_err();
        assert!(err.to_string().contains("'10.0.0.0/40' is not a CIDR"), "{err}");
    }
}
