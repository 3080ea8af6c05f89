//! Request-path values from labels: `HAPROXY_{n}_PATH` prefixes and the rewrite/redirect paths.

use std::fmt;
use std::str::FromStr;

/// `HAPROXY_{n}_PATH`: one or more path prefixes, matched as HAProxy's `path_beg` does (a plain
/// string prefix, so `/api` also matches `/apiary`). A leading `-i` flag makes the match
/// case-insensitive, as in HAProxy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathMatch {
    prefixes: Vec<Box<str>>,
    case_insensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no path given")]
    Empty,
    #[error("`{0}` does not start with `/`")]
    NotAbsolute(String),
    #[error("`{0}` is not supported (only the `-i` flag is)")]
    UnknownFlag(String),
    #[error("`{0}` contains a control character or a `?`/`#`")]
    BadCharacter(String),
}

impl PathMatch {
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.prefixes.iter().map(|p| &**p)
    }

    pub fn is_case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// Whether a request path (without the query) starts with one of the prefixes.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.as_bytes();
        self.prefixes.iter().any(|prefix| {
            let prefix = prefix.as_bytes();
            path.len() >= prefix.len()
                && if self.case_insensitive {
                    path[..prefix.len()].eq_ignore_ascii_case(prefix)
                } else {
                    path[..prefix.len()] == *prefix
                }
        })
    }
}

impl FromStr for PathMatch {
    type Err = PathError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let mut case_insensitive = false;
        let mut prefixes = Vec::new();
        for word in raw.split_ascii_whitespace() {
            if word == "-i" {
                case_insensitive = true;
            } else if word.starts_with('-') {
                return Err(PathError::UnknownFlag(word.to_owned()));
            } else {
                prefixes.push(UriPath::from_str(word)?.0);
            }
        }
        if prefixes.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(PathMatch {
            prefixes,
            case_insensitive,
        })
    }
}

impl fmt::Display for PathMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.case_insensitive {
            f.write_str("-i ")?;
        }
        for (i, prefix) in self.prefixes.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(prefix)?;
        }
        Ok(())
    }
}

impl serde::Serialize for PathMatch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An absolute request path (`/x/y`) without query, fragment, spaces or control characters:
/// the value of the proxypass, revproxy and redirect labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct UriPath(Box<str>);

impl UriPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UriPath {
    type Err = PathError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute(raw.to_owned()));
        }
        if raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#')
        {
            return Err(PathError::BadCharacter(raw.to_owned()));
        }
        Ok(UriPath(raw.into()))
    }
}

impl fmt::Display for UriPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_match_is_path_beg() {
        let p: PathMatch = "/api /v2".parse().unwrap();
        assert!(p.matches("/api"));
        assert!(p.matches("/apiary"));
        assert!(p.matches("/v2/apps"));
        assert!(!p.matches("/API"));
        assert!(!p.matches("/"));
        assert_eq!(p.to_string(), "/api /v2");
    }

    #[test]
    fn dash_i_is_case_insensitive() {
        let p: PathMatch = "-i /Api".parse().unwrap();
        assert!(p.matches("/API/x"));
        assert!(p.matches("/api"));
        assert!(!p.matches("/ap"));
        assert_eq!(p.to_string(), "-i /Api");
    }

    #[test]
    fn refuses_bad_paths() {
        assert_eq!("".parse::<PathMatch>(), Err(PathError::Empty));
        assert_eq!("-i".parse::<PathMatch>(), Err(PathError::Empty));
        assert!(matches!(
            "api".parse::<PathMatch>(),
            Err(PathError::NotAbsolute(_))
        ));
        assert!(matches!(
            "-m /x".parse::<PathMatch>(),
            Err(PathError::UnknownFlag(_))
        ));
        assert!(matches!(
            "/a?b".parse::<UriPath>(),
            Err(PathError::BadCharacter(_))
        ));
        assert!(matches!(
            "/a\u{7f}".parse::<UriPath>(),
            Err(PathError::BadCharacter(_))
        ));
    }
}
