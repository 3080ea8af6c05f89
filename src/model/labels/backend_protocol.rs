//! How an app port's endpoints are spoken to: `HAPROXY_{n}_BACKEND_PROTOCOL`, and the tokens
//! Marathon-LB's users on HAProxy 2.x appended to the server line
//! (`HAPROXY_{n}_BACKEND_SERVER_OPTIONS`) for the same purpose.

use std::fmt;

use serde::Serialize;

use super::values::invalid;
use super::{LabelIssue, LabelIssueKind};

/// The protocol spoken to a backend's endpoints (haproxy-ingress's `backend-protocol` values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum BackendProtocol {
    /// HTTP/1.1, cleartext.
    #[default]
    #[serde(rename = "h1")]
    H1,
    /// HTTP/2 by prior knowledge, cleartext (h2c): what gRPC servers speak.
    #[serde(rename = "h2")]
    H2,
    /// HTTP/1.1 over TLS (ALPN `http/1.1`).
    #[serde(rename = "h1-ssl")]
    H1Ssl,
    /// HTTP/2 over TLS (ALPN `h2`).
    #[serde(rename = "h2-ssl")]
    H2Ssl,
}

impl BackendProtocol {
    pub fn is_http2(self) -> bool {
        matches!(self, BackendProtocol::H2 | BackendProtocol::H2Ssl)
    }

    pub fn is_tls(self) -> bool {
        matches!(self, BackendProtocol::H1Ssl | BackendProtocol::H2Ssl)
    }

    /// The label's value for it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendProtocol::H1 => "h1",
            BackendProtocol::H2 => "h2",
            BackendProtocol::H1Ssl => "h1-ssl",
            BackendProtocol::H2Ssl => "h2-ssl",
        }
    }

    fn of(http2: bool, tls: bool) -> BackendProtocol {
        match (http2, tls) {
            (false, false) => BackendProtocol::H1,
            (true, false) => BackendProtocol::H2,
            (false, true) => BackendProtocol::H1Ssl,
            (true, true) => BackendProtocol::H2Ssl,
        }
    }

    /// `HAPROXY_{n}_BACKEND_PROTOCOL`.
    pub(super) fn parse(key: &str, v: &str) -> Result<BackendProtocol, LabelIssue> {
        match v.to_ascii_lowercase().as_str() {
            "h1" => Ok(BackendProtocol::H1),
            "h2" => Ok(BackendProtocol::H2),
            "h1-ssl" => Ok(BackendProtocol::H1Ssl),
            "h2-ssl" => Ok(BackendProtocol::H2Ssl),
            _ => Err(invalid(
                key,
                &format!("`{v}` is not one of h1, h2, h1-ssl, h2-ssl"),
            )),
        }
    }
}

impl fmt::Display for BackendProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What Marathon-LB's server-line template says about the protocol, when the only change to it
/// is HAProxy 2.x's server keywords appended: `proto h2`, `ssl`, `verify none`, `alpn h2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerLine {
    pub protocol: BackendProtocol,
    /// `verify none`: the endpoint's certificate is not checked, even with `--backend-ca`.
    pub verify_none: bool,
}

/// Marathon-LB's default `HAPROXY_{n}_BACKEND_SERVER_OPTIONS`, without its indent and newline.
const DEFAULT_SERVER_LINE: &str =
    "server {serverName} {host_ipv4}:{port}{cookieOptions}{healthCheckOptions}{otherOptions}";

impl ServerLine {
    /// The default line with keywords appended; `Ok(None)` for the default line itself. Any
    /// other change is a template override Switchyard does not support.
    pub(super) fn parse(key: &str, v: &str) -> Result<Option<ServerLine>, LabelIssue> {
        let unsupported = |why: &str| LabelIssue {
            label: key.to_owned(),
            kind: LabelIssueKind::UnsupportedTemplate,
            reason: format!(
                "{why}; only Marathon-LB's default server line with `proto h2`, `ssl`, \
                 `verify none` or `alpn h2` appended is read (use HAPROXY_{{n}}_BACKEND_PROTOCOL); \
                 the label is ignored (the port is still served)"
            ),
        };
        let Some(rest) = v.trim().strip_prefix(DEFAULT_SERVER_LINE) else {
            return Err(unsupported("the server line is not Marathon-LB's default"));
        };
        let (mut http2, mut alpn_http2, mut tls, mut verify_none) = (false, None, false, false);
        let mut words = rest.split_ascii_whitespace();
        while let Some(word) = words.next() {
            match (word, words.clone().next()) {
                ("proto", Some("h2")) => http2 = true,
                ("alpn", Some("h2")) => alpn_http2 = Some(true),
                ("alpn", Some("http/1.1")) => alpn_http2 = Some(false),
                ("verify", Some("none")) => verify_none = true,
                ("verify", Some("required")) => verify_none = false,
                ("ssl", _) => {
                    tls = true;
                    continue;
                }
                _ => return Err(unsupported(&format!("`{word}` is not read here"))),
            }
            words.next();
        }
        if rest.trim().is_empty() {
            return Ok(None);
        }
        // `alpn` matters with `ssl` only, and there it chooses the protocol as `proto` does.
        let http2 = http2 || (tls && alpn_http2 == Some(true));
        Ok(Some(ServerLine {
            protocol: BackendProtocol::of(http2, tls),
            verify_none,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "HAPROXY_0_BACKEND_SERVER_OPTIONS";

    fn line(tail: &str) -> Result<Option<ServerLine>, LabelIssueKind> {
        let v = format!("  {DEFAULT_SERVER_LINE}{tail}\n");
        ServerLine::parse(KEY, &v).map_err(|e| e.kind)
    }

    #[test]
    fn haproxy_2_keywords_on_the_default_line_choose_the_protocol() {
        let p = |tail| line(tail).unwrap().map(|l| (l.protocol, l.verify_none));
        assert_eq!(p(""), None);
        assert_eq!(p(" proto h2"), Some((BackendProtocol::H2, false)));
        assert_eq!(p(" ssl"), Some((BackendProtocol::H1Ssl, false)));
        assert_eq!(
            p(" ssl verify none alpn h2"),
            Some((BackendProtocol::H2Ssl, true))
        );
        assert_eq!(p(" ssl proto h2"), Some((BackendProtocol::H2Ssl, false)));
        assert_eq!(p(" alpn h2"), Some((BackendProtocol::H1, false)));
    }

    #[test]
    fn any_other_change_is_an_unsupported_template() {
        for tail in [" check inter 2s", " proto h3", " ssl sni str(x)", " proto"] {
            assert_eq!(
                line(tail),
                Err(LabelIssueKind::UnsupportedTemplate),
                "{tail}"
            );
        }
        let other = "  server {serverName} {host}:{port} proto h2\n";
        assert_eq!(
            ServerLine::parse(KEY, other).map_err(|e| e.kind),
            Err(LabelIssueKind::UnsupportedTemplate)
        );
    }

    #[test]
    fn backend_protocol_values() {
        let k = "HAPROXY_0_BACKEND_PROTOCOL";
        assert_eq!(BackendProtocol::parse(k, "H2"), Ok(BackendProtocol::H2));
        assert_eq!(
            BackendProtocol::parse(k, "h2-ssl"),
            Ok(BackendProtocol::H2Ssl)
        );
        let err = BackendProtocol::parse(k, "grpc").unwrap_err();
        assert_eq!(err.kind, LabelIssueKind::Invalid);
        assert!(err.reason.contains("grpc"), "{}", err.reason);
    }
}
