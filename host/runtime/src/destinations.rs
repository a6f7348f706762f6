//! Where a plugin's `http` grant lets it connect: host patterns with their ports, and the
//! address ranges (loopback, link-local, private, ...) a host name must not resolve to unless
//! the grant names them itself.
//!
//! Not here: resolving names and connecting (see `outgoing`), which use these checks on the
//! address they actually connect to.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One entry of an `http` grant: `api.example.com`, `*.example.com`, `10.1.2.3`, `[fd00::1]`,
/// `10.0.0.0/8` or `[fc00::/7]`, each optionally with `:port`. Without a port, only 80 and 443.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    target: Target,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A host name, lower case.
    Name(String),
    /// `*.example.com`: any name ending in `.example.com` (stored with the leading dot).
    Suffix(String),
    /// An address (a /32 or /128) or a network.
    Net(IpNet),
}

/// Ports a pattern without `:port` allows.
const DEFAULT_PORTS: [u16; 2] = [80, 443];

impl FromStr for HostPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "'{text}' {why} (use example.com, example.com:8443, *.example.com, 10.0.0.5, \
                 10.0.0.0/8:5432 or [fd00::/8]:443)"
            )
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("opens '[' without closing it"))?;
            match after {
                "" => (inside, None),
                _ => (
                    inside,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| bad("has text after ']'"))?,
                    ),
                ),
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') => (host, Some(port)),
                Some(_) => return Err(bad("is an IPv6 address outside brackets")),
                None => (text, None),
            }
        };
        let port = port
            .map(|p| p.parse::<u16>().ok().filter(|&p| p != 0))
            .map(|p| p.ok_or_else(|| bad("has a port that is not 1-65535")))
            .transpose()?;
        let target = if text.starts_with('[') {
            Target::Net(parse_net(host).ok_or_else(|| bad("is not an IPv6 address or network"))?)
        } else if let Some(net) = parse_net(host) {
            Target::Net(net)
        } else if host.contains('/') {
            return Err(bad("is not a network"));
        } else if let Some(domain) = host.strip_prefix("*.") {
            valid_name(domain).ok_or_else(|| bad("is not a host name"))?;
            Target::Suffix(format!(".{}", domain.to_ascii_lowercase()))
        } else {
            valid_name(host).ok_or_else(|| bad("is not a host name"))?;
            Target::Name(host.to_ascii_lowercase())
        };
        Ok(Self { target, port })
    }
}

fn parse_net(text: &str) -> Option<IpNet> {
    if text.contains('/') {
        // `10.1.2.3/8` is refused: a network is written with its host bits clear.
        text.parse::<IpNet>().ok().filter(|net| net.trunc() == *net)
    } else {
        text.parse::<IpAddr>().ok().map(IpNet::from)
    }
}

fn valid_name(name: &str) -> Option<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(())
}

impl HostPattern {
    fn allows_port(&self, port: u16) -> bool {
        match self.port {
            Some(p) => p == port,
            None => DEFAULT_PORTS.contains(&port),
        }
    }

    /// Whether a request to `destination` on `port` is within this pattern.
    pub(crate) fn matches(&self, destination: &Destination, port: u16) -> bool {
        let host_ok = match (&self.target, destination) {
            (Target::Name(name), Destination::Name(host)) => name == host,
            (Target::Suffix(suffix), Destination::Name(host)) => host.ends_with(suffix.as_str()),
            (Target::Net(net), Destination::Ip(ip)) => net.contains(&effective(*ip)),
            _ => false,
        };
        host_ok && self.allows_port(port)
    }

    /// Whether this pattern names `ip` (in `block`, a range refused by default) explicitly: an
    /// address or network inside that range. `0.0.0.0/0` names no private address.
    fn names(&self, ip: IpAddr, block: &IpNet, port: u16) -> bool {
        matches!(&self.target, Target::Net(net) if net.contains(&ip) && block.contains(net))
            && self.allows_port(port)
    }
}

/// The host a request names: a name (lower case) or an address literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    Name(String),
    Ip(IpAddr),
}

impl Destination {
    /// From a URI's host (`example.com`, `10.0.0.1`, `[::1]`).
    pub(crate) fn parse(host: &str) -> Self {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Destination::Ip(ip),
            Err(_) => Destination::Name(host.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

/// Why a plugin may not connect to `ip` on `port` under `patterns`, if it may not: the address
/// is in a range refused by default and no pattern names it.
pub(crate) fn refusal(patterns: &[HostPattern], ip: IpAddr, port: u16) -> Option<String> {
    let ip = effective(ip);
    let (block, what) = refused_range(ip)?;
    if patterns.iter().any(|p| p.names(ip, &block, port)) {
        return None;
    }
    Some(format!(
        "{ip} is a {what} address ({block}); only a grant naming it (\"{}\" or a network within \
         {block}) reaches it",
        match ip {
            IpAddr::V4(_) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
        }
    ))
}

/// The IPv4 address an IPv6 one stands for (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`,
/// 6to4 `2002::/16`), so `::ffff:127.0.0.1` counts as loopback; others unchanged.
fn effective(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded =
        |hi: u16, lo: u16| IpAddr::V4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        _ => ip,
    }
}

/// The range refused by default that `ip` falls in, and what it is.
fn refused_range(ip: IpAddr) -> Option<(IpNet, &'static str)> {
    const V4: [([u8; 4], u8, &str); 11] = [
        ([0, 0, 0, 0], 8, "unspecified"),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared (carrier-grade NAT)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "reserved"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    const V6: [(u16, u16, u8, &str); 6] = [
        (0, 0, 128, "unspecified"),
        (0, 1, 128, "loopback"),
        (0, 0, 96, "reserved"),
        (0xfe80, 0, 10, "link-local"),
        (0xfec0, 0, 10, "site-local"),
        (0xfc00, 0, 7, "private"),
    ];
    let net = |addr: IpAddr, len: u8| IpNet::new(addr, len).expect("prefix fits");
    match ip {
        IpAddr::V4(_) => V4
            .iter()
            .map(|&(a, len, what)| (net(IpAddr::from(a), len), what))
            .find(|(block, _)| block.contains(&ip)),
        IpAddr::V6(v6) if v6.is_multicast() => {
            Some((net("ff00::".parse().expect("literal"), 8), "multicast"))
        }
        IpAddr::V6(_) => V6
            .iter()
            .map(|&(first, last, len, what)| {
                let addr = Ipv6Addr::new(first, 0, 0, 0, 0, 0, 0, last);
                (net(IpAddr::V6(addr), len), what)
            })
            .find(|(block, _)| block.contains(&ip)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<HostPattern> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn patterns_parse_or_say_why_not() {
        for ok in [
            "api.example.com",
            "API.example.com:8443",
            "*.internal",
            "10.0.0.5",
            "10.0.0.0/8:5432",
            "[::1]",
            "[fd00::/8]:443",
        ] {
            assert!(ok.parse::<HostPattern>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "http://x",
            "a b",
            "x:0",
            "x:99999",
            "::1",
            "[::1",
            "[::1]x",
            "10.1.2.3/8",
            "a/b",
            "*.",
        ] {
            assert!(bad.parse::<HostPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_ports_match_exactly_and_default_to_80_and_443() {
        let list = patterns(&["api.example.com", "*.internal", "db.example.com:5432"]);
        let allows = |host: &str, port| {
            list.iter()
                .any(|p| p.matches(&Destination::parse(host), port))
        };
        assert!(allows("api.example.com", 443));
        assert!(allows("API.example.com.", 80));
        assert!(
            !allows("api.example.com", 8080),
            "no port given: 80 and 443 only"
        );
        assert!(!allows("evil.example.com", 443));
        assert!(!allows("example.com.evil", 443));
        assert!(allows("db.internal", 443));
        assert!(!allows("internal", 443));
        assert!(allows("db.example.com", 5432));
        assert!(!allows("db.example.com", 443));
        assert!(!allows("10.0.0.1", 443), "names do not match addresses");
    }

    #[test]
    fn addresses_match_literals_and_networks() {
        let list = patterns(&["127.0.0.1:8080", "10.0.0.0/8", "[::1]:9000"]);
        let allows = |host: &str, port| {
            list.iter()
                .any(|p| p.matches(&Destination::parse(host), port))
        };
        assert!(allows("127.0.0.1", 8080));
        assert!(!allows("127.0.0.1", 8081));
        assert!(allows("10.9.8.7", 443));
        assert!(allows("[::1]", 9000));
        assert!(
            allows("[::ffff:127.0.0.1]", 8080),
            "mapped addresses are their IPv4"
        );
    }

    #[test]
    fn special_ranges_are_refused_unless_named() {
        let none = patterns(&["example.com"]);
        for addr in [
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(
                refusal(&none, ip(addr), 80).is_some(),
                "{addr} must be refused"
            );
        }
        for public in [
            "93.184.216.34",
            "172.32.0.1",
            "192.0.2.2",
            "2606:4700::1",
            "8.8.8.8",
        ] {
            assert_eq!(refusal(&none, ip(public), 443), None, "{public}");
        }
        let why = refusal(&none, ip("127.0.0.1"), 8080).unwrap();
        assert!(
            why.contains("loopback") && why.contains("127.0.0.1:8080"),
            "{why}"
        );

        let named = patterns(&[
            "127.0.0.1:8080",
            "10.0.0.0/16",
            "0.0.0.0/0",
            "[fd00::/8]:443",
        ]);
        assert_eq!(refusal(&named, ip("127.0.0.1"), 8080), None);
        assert!(
            refusal(&named, ip("127.0.0.1"), 8081).is_some(),
            "wrong port"
        );
        assert!(refusal(&named, ip("127.0.0.2"), 8080).is_some());
        assert_eq!(refusal(&named, ip("10.0.9.9"), 443), None);
        assert!(refusal(&named, ip("10.1.0.1"), 443).is_some());
        assert!(
            refusal(&named, ip("169.254.169.254"), 80).is_some(),
            "0.0.0.0/0 does not name a link-local address"
        );
        assert_eq!(refusal(&named, ip("fd00::5"), 443), None);
    }
}
