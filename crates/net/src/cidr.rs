//! Address ranges such as `127.0.0.0/8` or `::1/128`, for the configuration.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The unit the limits on a client count (connections and TLS handshakes
/// per client, failed logins: hardening.md C-AU1, C-TLS12): an IPv4
/// address, or an IPv6 address's /64. A /64 is one link's network (RFC
/// 4291 §2.5.1: the interface identifier is the low 64 bits) and every
/// subscriber gets at least one (RFC 6177 §3), so a host may rotate
/// through its addresses at will (RFC 8981): counted one by one, they
/// would give a single client 2^64 budgets. An IPv4 address written the
/// IPv6 way (`::ffff:192.0.2.1`, from a dual-stack socket) is that IPv4
/// address.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// [`client_network`] as text, for a store's key: `192.0.2.1`,
/// `2001:db8:1:2::/64`.
pub fn client_key(ip: IpAddr) -> String {
    match client_network(ip) {
        IpAddr::V6(n) => format!("{n}/64"),
        v4 => v4.to_string(),
    }
}

fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    bits >> (width - prefix.min(width))
}

impl FromStr for Cidr {
    type Err = String;

    /// `ADDR/PREFIX`, or a bare address (a single host).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("not an IP address: {addr}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad prefix length in {s}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_network(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_network(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            client_network(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_network(ip("2001:db8:1:2::1")),
            client_network(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_network(ip("2001:db8:1:2::1")),
            client_network(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(client_key(ip("::1")), "::/64");
        assert_eq!(client_key(ip("192.0.2.7")), "192.0.2.7");
    }

    #[test]
    fn ranges() {
        let lo: Cidr = "127.0.0.0/8".parse().unwrap();
        assert!(lo.contains("127.1.2.3".parse().unwrap()));
        assert!(lo.contains("::ffff:127.0.0.9".parse().unwrap()));
        assert!(!lo.contains("10.0.0.1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("1.2.3.4/33".parse::<Cidr>().is_err());
        assert!("x/3".parse::<Cidr>().is_err());
    }
}
