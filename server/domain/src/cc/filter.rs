//! cc: the client filter (`cc filter`), which clients a command is for.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ferromega_cc_proto::Hello;

/// A filter: every set field must match (reference §7.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// UUID, lower case.
    pub uuid: String,
    /// Hostname.
    pub hostname: String,
    /// Architecture.
    pub arch: String,
    /// Operating system.
    pub os: String,
    /// An IP address or CIDR containing one of the client's addresses.
    pub ip: String,
    /// A MAC address.
    pub mac: String,
    /// Tags that must be set, with their values.
    pub tags: BTreeMap<String, String>,
}

/// Why a filter does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// Not `key=value`.
    #[error("invalid filter: {0}")]
    Invalid(String),
}

impl Filter {
    /// Parses the words of `cc filter` (`uuid=…`, `ip=10.0.0.0/24`, `tag=k=v`, `k=v`).
    pub fn parse(words: &[String]) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| FilterError::Invalid(w.clone()))?;
            match k {
                "uuid" => f.uuid = v.to_lowercase(),
                "hostname" => f.hostname = v.to_string(),
                "arch" => f.arch = v.to_string(),
                "os" => f.os = v.to_string(),
                "ip" => {
                    if parse_cidr(v).is_none() && v.parse::<std::net::IpAddr>().is_err() {
                        return Err(FilterError::Invalid(w.clone()));
                    }
                    f.ip = v.to_string()
                }
                "mac" => f.mac = v.to_lowercase(),
                "tag" => {
                    let (tk, tv) = v
                        .split_once(['=', ':'])
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .unwrap_or((v.to_string(), String::new()));
                    f.tags.insert(tk, tv);
                }
                other => {
                    f.tags.insert(other.to_string(), v.to_string());
                }
            }
        }
        Ok(f)
    }

    /// Whether a client with this hello and these tags matches.
    pub fn matches(&self, c: &Hello, tags: &BTreeMap<String, String>) -> bool {
        let eq = |want: &str, have: &str| want.is_empty() || want == have;
        eq(&self.uuid, &c.uuid.to_lowercase())
            && eq(&self.hostname, &c.hostname)
            && eq(&self.arch, &c.arch)
            && eq(&self.os, &c.os)
            && (self.mac.is_empty() || c.macs.iter().any(|m| m.to_lowercase() == self.mac))
            && (self.ip.is_empty() || c.ips.iter().any(|ip| ip_matches(&self.ip, ip)))
            && self
                .tags
                .iter()
                .all(|(k, v)| tags.get(k).is_some_and(|t| v.is_empty() || t == v))
    }

    /// The row of `cc filter`: uuid, hostname, arch, os, ip, mac, tags (JSON).
    pub fn row(&self) -> Vec<String> {
        vec![
            self.uuid.clone(),
            self.hostname.clone(),
            self.arch.clone(),
            self.os.clone(),
            self.ip.clone(),
            self.mac.clone(),
            serde_json::to_string(&self.tags).unwrap_or_default(),
        ]
    }
}

fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u32)> {
    let (a, n) = s.split_once('/')?;
    let n: u32 = n.parse().ok().filter(|n| *n <= 32)?;
    Some((a.parse().ok()?, n))
}

fn ip_matches(want: &str, have: &str) -> bool {
    match (parse_cidr(want), have.parse::<Ipv4Addr>()) {
        (Some((net, n)), Ok(ip)) => {
            let mask = if n == 0 { 0 } else { u32::MAX << (32 - n) };
            u32::from(net) & mask == u32::from(ip) & mask
        }
        _ => want == have,
    }
}

/// `k=v && k=v`, as `cc commands` shows a filter.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in [
            ("uuid", &self.uuid),
            ("hostname", &self.hostname),
            ("arch", &self.arch),
            ("os", &self.os),
            ("ip", &self.ip),
            ("mac", &self.mac),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={v}"));
            }
        }
        for (k, v) in &self.tags {
            parts.push(format!("{k}={v}"));
        }
        f.write_str(&parts.join(" && "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn filter_selects_by_cidr_hostname_and_tag() {
        let f = Filter::parse(&words("ip=10.0.0.0/24 hostname=foo tag=role=web")).unwrap();
        let c = Hello {
            hostname: "foo".into(),
            ips: vec!["10.0.0.7".into()],
            ..Hello::default()
        };
        let mut tags = BTreeMap::from([("role".to_string(), "web".to_string())]);
        assert!(f.matches(&c, &tags));
        tags.insert("role".into(), "db".into());
        assert!(!f.matches(&c, &tags));
        assert_eq!(f.to_string(), "hostname=foo && ip=10.0.0.0/24 && role=web");
    }

    #[test]
    fn filter_that_does_not_parse_is_an_error() {
        assert!(Filter::parse(&words("hostname")).is_err());
        assert!(Filter::parse(&words("ip=nonsense")).is_err());
    }
}
