//! DNS block and allow lists (RFC 5782): the client address asked under a
//! list's zone (IPv4 octets reversed, IPv6 nibbles reversed), an A record
//! in 127.0.0.0/8 meaning "listed"; domain lists (DBL style) ask for the
//! name itself under the zone.
//!
//! A list that does not answer counts as nothing (never defer all mail
//! because one list is down); answers outside 127.0.0.0/8, and Spamhaus'
//! 127.255.255.0/24 error codes ("you may not query"), are ignored too.
//!
//! Configuration: `zone`, `zone=score`, or `zone:127.0.0.2,127.0.0.3=score`
//! (only those return codes count). Without a score, a listing in a block
//! list refuses the client (the score is the reject score).

use std::net::{IpAddr, Ipv4Addr};

use dns::Resolver;

#[derive(Debug, Clone, PartialEq)]
pub struct DnsList {
    pub zone: String,
    /// Only these answers count (None: any in 127.0.0.0/8).
    pub codes: Option<Vec<Ipv4Addr>>,
    /// Points a listing is worth (None: the list decides alone).
    pub score: Option<f64>,
}

impl std::str::FromStr for DnsList {
    type Err = String;

    fn from_str(s: &str) -> Result<DnsList, String> {
        let (rest, score) = match s.rsplit_once('=') {
            Some((r, v)) => (
                r,
                Some(
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("bad score in {s:?}"))?,
                ),
            ),
            None => (s, None),
        };
        let (zone, codes) = match rest.split_once(':') {
            Some((z, c)) => {
                let codes: Result<Vec<Ipv4Addr>, _> =
                    c.split(',').map(|x| x.trim().parse()).collect();
                (
                    z,
                    Some(codes.map_err(|_| format!("bad return code in {s:?}"))?),
                )
            }
            None => (rest, None),
        };
        let zone = zone.trim().trim_end_matches('.').to_ascii_lowercase();
        if zone.is_empty() || !zone.contains('.') {
            return Err(format!("{s:?} is not a DNS list zone"));
        }
        Ok(DnsList { zone, codes, score })
    }
}

/// The name to ask for an address in a zone (RFC 5782 §2.1, §2.4).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64 + zone.len());
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            s.push_str(zone);
            s
        }
    }
}

/// Whether an answer means "listed" for this list.
fn counts(list: &DnsList, answer: Ipv4Addr) -> bool {
    let [a, b, c, _] = answer.octets();
    if a != 127 || (b == 255 && c == 255) {
        return false;
    }
    list.codes
        .as_ref()
        .is_none_or(|codes| codes.contains(&answer))
}

/// The lists (of `lists`) on which `name` (an address query name or a
/// domain under each zone) is listed, asked side by side.
async fn listed_by(
    resolver: &Resolver,
    lists: &[DnsList],
    name: impl Fn(&str) -> String,
) -> Vec<DnsList> {
    let mut set = tokio::task::JoinSet::new();
    for list in lists.iter().cloned() {
        let (resolver, query) = (resolver.clone(), name(&list.zone));
        set.spawn(async move {
            match resolver.addresses_of_family(&query, false).await {
                Ok(ips) => ips
                    .iter()
                    .any(|ip| matches!(ip, IpAddr::V4(v4) if counts(&list, *v4)))
                    .then_some(list),
                Err(e) if e.is_temporary() => {
                    tracing::info!(list = %list.zone, error = %e, "DNS list did not answer; counted as not listed");
                    None
                }
                Err(_) => None,
            }
        });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        if let Ok(Some(list)) = done {
            out.push(list);
        }
    }
    out.sort_by(|a, b| a.zone.cmp(&b.zone));
    out
}

/// The lists naming this client address.
pub async fn address_listed(resolver: &Resolver, lists: &[DnsList], ip: IpAddr) -> Vec<DnsList> {
    if lists.is_empty() {
        return Vec::new();
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    listed_by(resolver, lists, |zone| query_name(ip, zone)).await
}

/// The lists naming this domain (DBL style).
pub async fn domain_listed(resolver: &Resolver, lists: &[DnsList], domain: &str) -> Vec<DnsList> {
    if lists.is_empty() || domain.is_empty() {
        return Vec::new();
    }
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    listed_by(resolver, lists, |zone| format!("{domain}.{zone}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_config() {
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), "bl.test"),
            "99.2.0.192.bl.test"
        );
        // RFC 5782 §2.4's example.
        assert_eq!(
            query_name(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com"
        );
        let l: DnsList = "zen.test".parse().unwrap();
        assert_eq!((l.codes.clone(), l.score), (None, None));
        let l: DnsList = "zen.test:127.0.0.2,127.0.0.3=4.5".parse().unwrap();
        assert_eq!(l.score, Some(4.5));
        assert!(counts(&l, Ipv4Addr::new(127, 0, 0, 3)));
        assert!(!counts(&l, Ipv4Addr::new(127, 0, 0, 4)));
        let any: DnsList = "x.test".parse().unwrap();
        assert!(counts(&any, Ipv4Addr::new(127, 0, 0, 10)));
        assert!(!counts(&any, Ipv4Addr::new(127, 255, 255, 254)));
        assert!(!counts(&any, Ipv4Addr::new(10, 0, 0, 1)));
        assert!("nodot".parse::<DnsList>().is_err());
        assert!("a.test=lots".parse::<DnsList>().is_err());
    }
}
