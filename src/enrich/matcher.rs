//! Small matchers for enrichment rules: globs or regexes over names, and CIDR ranges over addresses.

use std::net::IpAddr;

use serde::Deserialize;

/// Why a pattern or an address range does not parse.
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("invalid regex {pattern:?}: {source}")]
    Regex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("invalid address in {0:?}")]
    Address(String),
    #[error("invalid prefix length in {0:?}")]
    PrefixLength(String),
    #[error("prefix length {len} too long in {text:?}")]
    PrefixTooLong { len: u32, text: String },
}

/// A name pattern: `re:^...$` is a regex, anything else a glob where `*` matches any run of characters.
#[derive(Debug, Clone)]
pub enum Pattern {
    Exact(String),
    Glob(Vec<String>),
    Regex(regex::Regex),
}

impl Pattern {
    pub fn parse(s: &str) -> Result<Self, MatcherError> {
        if let Some(re) = s.strip_prefix("re:") {
            return regex::Regex::new(re).map(Pattern::Regex).map_err(|source| {
                MatcherError::Regex {
                    pattern: re.to_owned(),
                    source,
                }
            });
        }
        if s.contains('*') {
            Ok(Pattern::Glob(s.split('*').map(str::to_owned).collect()))
        } else {
            Ok(Pattern::Exact(s.to_owned()))
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            Pattern::Exact(e) => e == s,
            Pattern::Regex(r) => r.is_match(s),
            Pattern::Glob(parts) => glob(parts, s),
        }
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn glob(parts: &[String], s: &str) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return true;
    };
    if parts.len() == 1 {
        return first == s;
    }
    if !s.starts_with(first.as_str())
        || s.len() < first.len() + last.len()
        || !s.ends_with(last.as_str())
    {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid.as_str()) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// An address range, `10.0.0.0/8` or `fd00::/8` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: u128,
    mask: u128,
    v6: bool,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, MatcherError> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| MatcherError::Address(s.to_owned()))?;
        let (bits, max) = match ip {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
            IpAddr::V6(v6) => (u128::from(v6), 128u32),
        };
        let len: u32 = match len {
            Some(l) => l
                .trim()
                .parse()
                .map_err(|_| MatcherError::PrefixLength(s.to_owned()))?,
            None => max,
        };
        if len > max {
            return Err(MatcherError::PrefixTooLong {
                len,
                text: s.to_owned(),
            });
        }
        let host_bits = max - len;
        let full: u128 = if max == 32 {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        let mask = if host_bits >= 128 {
            0
        } else {
            (full >> host_bits) << host_bits
        } & full;
        Ok(Self {
            net: bits & mask,
            mask,
            v6: max == 128,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) if !self.v6 => u128::from(u32::from(v4)) & self.mask == self.net,
            IpAddr::V6(v6) if self.v6 => u128::from(v6) & self.mask == self.net,
            // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 ranges.
            IpAddr::V6(v6) if !self.v6 => v6
                .to_ipv4_mapped()
                .is_some_and(|v4| u128::from(u32::from(v4)) & self.mask == self.net),
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_exact_names_and_regexes() {
        let p = |s: &str| Pattern::parse(s).unwrap();
        assert!(p("payments/*").matches("payments/api"));
        assert!(!p("payments/*").matches("checkout/api"));
        assert!(p("*@example.com").matches("alice@example.com"));
        assert!(p("a*b*c").matches("aXXbYYc"));
        assert!(!p("a*b*c").matches("acb"));
        assert!(p("*").matches(""));
        assert!(p("kube-system").matches("kube-system"));
        assert!(!p("kube-system").matches("kube-system2"));
        assert!(p("re:^system:node:ip-.*$").matches("system:node:ip-10-0-0-1"));
        assert!(Pattern::parse("re:(").is_err());
    }

    #[test]
    fn cidrs_match_v4_v6_and_mapped_addresses() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.20.30.40".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("192.168.1.1")
            .unwrap()
            .contains("192.168.1.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope/8").is_err());
    }
}
