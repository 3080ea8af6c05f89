//! Virtual host names: `HAPROXY_{n}_VHOST` entries and request `Host` values.
//!
//! A [`VHost`] is either an exact name or a `*.suffix` wildcard, always lower case, without a
//! trailing dot. Request hosts are normalised the same way by [`normalize_host`], into a caller's
//! stack buffer so that a lookup allocates nothing.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The longest DNS name (RFC 1035): a longer `Host` can match nothing.
pub const MAX_HOST_LEN: usize = 253;

/// A virtual host an app asked for. The name is shared (`Arc`): every route of a vhost clones
/// it by reference count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VHost {
    /// `shop.example.org`: matches that name only.
    Exact(Arc<str>),
    /// `*.example.org`, stored as `example.org`: matches any name with at least one more label
    /// in front (`a.example.org`, `a.b.example.org`), not `example.org` itself.
    Wildcard(Arc<str>),
}

/// Why a vhost entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VHostError {
    #[error("empty host name")]
    Empty,
    #[error("host name longer than {MAX_HOST_LEN} characters")]
    TooLong,
    #[error("`{0}` is not a valid host name (letters, digits, `-`, `_` and `.` only; a port is not allowed)")]
    BadCharacter(String),
    #[error("`{0}` has an empty label")]
    EmptyLabel(String),
    #[error("`{0}`: a wildcard must be the whole first label, as in `*.example.com`")]
    BadWildcard(String),
}

impl VHost {
    /// The name (exact) or the suffix after `*.` (wildcard).
    pub fn name(&self) -> &str {
        match self {
            VHost::Exact(name) | VHost::Wildcard(name) => name,
        }
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self, VHost::Wildcard(_))
    }

    /// Whether a normalised request host (see [`normalize_host`]) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            VHost::Exact(name) => **name == *host,
            VHost::Wildcard(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(&**suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }
}

impl FromStr for VHost {
    type Err = VHostError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let trimmed = raw.trim();
        let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if name.is_empty() {
            return Err(VHostError::Empty);
        }
        if name.len() > MAX_HOST_LEN {
            return Err(VHostError::TooLong);
        }
        let (wildcard, rest) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        // One pass over the bytes; the errors are reported in a fixed order of precedence.
        let (mut star, mut bad, mut upper, mut empty_label) = (false, false, false, false);
        let mut previous = b'.';
        for &b in rest.as_bytes() {
            match b {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
                b'A'..=b'Z' => upper = true,
                b'.' => empty_label |= previous == b'.',
                b'*' => star = true,
                _ => bad = true,
            }
            previous = b;
        }
        empty_label |= previous == b'.';
        if star {
            return Err(VHostError::BadWildcard(trimmed.to_owned()));
        }
        if bad {
            return Err(VHostError::BadCharacter(trimmed.to_owned()));
        }
        if empty_label {
            return Err(VHostError::EmptyLabel(trimmed.to_owned()));
        }
        let rest: Arc<str> = if upper {
            rest.to_ascii_lowercase().into()
        } else {
            rest.into()
        };
        Ok(if wildcard {
            VHost::Wildcard(rest)
        } else {
            VHost::Exact(rest)
        })
    }
}

impl fmt::Display for VHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VHost::Exact(name) => f.write_str(name),
            VHost::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

impl serde::Serialize for VHost {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The host part of a request `Host` (or SNI) value: port and trailing dot removed; IPv6
/// literals keep their brackets (`[::1]`). `None` when it cannot name any vhost (empty or longer
/// than a DNS name). Case is left as it is.
pub fn host_part(raw: &[u8]) -> Option<&[u8]> {
    let host = if raw.first() == Some(&b'[') {
        // `[v6]` or `[v6]:port`: keep up to the closing bracket.
        let end = raw.iter().position(|&b| b == b']')?;
        &raw[..=end]
    } else {
        match raw.iter().rposition(|&b| b == b':') {
            Some(colon) => &raw[..colon],
            None => raw,
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    (!host.is_empty() && host.len() <= MAX_HOST_LEN).then_some(host)
}

/// Normalises a request `Host` (or SNI) value: [`host_part`], lower-cased. Returns `None` for a
/// value that cannot name any vhost (see [`host_part`], or not UTF-8), without allocating: an
/// already lower-case host is borrowed as it is, any other is lower-cased into `buf`.
pub fn normalize_host<'a>(raw: &'a [u8], buf: &'a mut [u8; MAX_HOST_LEN]) -> Option<&'a str> {
    let host = host_part(raw)?;
    if !host.iter().any(u8::is_ascii_uppercase) {
        return std::str::from_utf8(host).ok();
    }
    let out = &mut buf[..host.len()];
    out.copy_from_slice(host);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_and_wildcard() {
        assert_eq!(
            " Shop.Example.ORG. ".parse::<VHost>(),
            Ok(VHost::Exact("shop.example.org".into()))
        );
        assert_eq!(
            "*.example.org".parse::<VHost>(),
            Ok(VHost::Wildcard("example.org".into()))
        );
        assert_eq!(
            "*.example.org".parse::<VHost>().unwrap().to_string(),
            "*.example.org"
        );
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!("".parse::<VHost>(), Err(VHostError::Empty));
        assert!(matches!(
            "a.*.com".parse::<VHost>(),
            Err(VHostError::BadWildcard(_))
        ));
        assert!(matches!(
            "*".parse::<VHost>(),
            Err(VHostError::BadWildcard(_))
        ));
        assert!(matches!(
            "*.".parse::<VHost>(),
            Err(VHostError::BadWildcard(_))
        ));
        assert!(matches!(
            "*..com".parse::<VHost>(),
            Err(VHostError::EmptyLabel(_))
        ));
        assert!(matches!(
            "foo*.com".parse::<VHost>(),
            Err(VHostError::BadWildcard(_))
        ));
        assert!(matches!(
            "a..b".parse::<VHost>(),
            Err(VHostError::EmptyLabel(_))
        ));
        assert!(matches!(
            "a.com:80".parse::<VHost>(),
            Err(VHostError::BadCharacter(_))
        ));
        assert!(matches!(
            "a b.com".parse::<VHost>(),
            Err(VHostError::BadCharacter(_))
        ));
        assert!(matches!(
            "héllo.com".parse::<VHost>(),
            Err(VHostError::BadCharacter(_))
        ));
        assert_eq!("a".repeat(254).parse::<VHost>(), Err(VHostError::TooLong));
    }

    #[test]
    fn wildcard_needs_a_label_in_front() {
        let w: VHost = "*.example.org".parse().unwrap();
        assert!(w.matches("a.example.org"));
        assert!(w.matches("a.b.example.org"));
        assert!(!w.matches("example.org"));
        assert!(!w.matches(".example.org"));
        assert!(!w.matches("aexample.org"));
    }

    #[test]
    fn normalizes_request_hosts() {
        let mut buf = [0; MAX_HOST_LEN];
        assert_eq!(
            normalize_host(b"Shop.Example.org:8080", &mut buf),
            Some("shop.example.org")
        );
        assert_eq!(
            normalize_host(b"shop.example.org.", &mut buf),
            Some("shop.example.org")
        );
        assert_eq!(normalize_host(b"[::1]:80", &mut buf), Some("[::1]"));
        assert_eq!(normalize_host(b"", &mut buf), None);
        assert_eq!(normalize_host(b":80", &mut buf), None);
        assert_eq!(normalize_host(b"\xff.com", &mut buf), None, "not UTF-8");
        assert_eq!(
            normalize_host("É.com".as_bytes(), &mut buf),
            Some("É.com"),
            "matches no vhost"
        );
        assert_eq!(normalize_host(&[b'a'; 300], &mut buf), None);
    }
}
